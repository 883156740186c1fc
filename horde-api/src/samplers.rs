//! The sampler and format fields of a generation, passed through to the worker's backend, and
//! the ranges they must keep.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// The KoboldAI generate fields a client may set, passed through to the worker. Fields that
/// AI Horde declares as integers are integers here, so they reach the worker as `100`, not
/// `100.0` (older KoboldCpp refuses floats there); a client's `100.0` is accepted as `100`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)]
pub struct Samplers {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 5))]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0.001, maximum = 1))]
    pub top_p: Option<f64>,
    #[serde(
        default,
        deserialize_with = "crate::numbers::integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub top_a: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub typical: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub tfs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub min_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3))]
    pub rep_pen: Option<f64>,
    #[serde(
        default,
        deserialize_with = "crate::numbers::integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 4096))]
    pub rep_pen_range: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10))]
    pub rep_pen_slope: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 5))]
    pub dynatemp_range: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 5))]
    pub dynatemp_exponent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10))]
    pub smoothing_factor: Option<f64>,
    #[serde(
        default,
        deserialize_with = "crate::numbers::integers",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(max_items = 16))]
    pub sampler_order: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 128))]
    pub stop_sequence: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub singleline: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frmttriminc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frmtrmblln: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frmtrmspch: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frmtadsnsp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_default_badwordsids: Option<bool>,
    /// The seed to sample with (KoboldAI's `sampler_seed`), 0–2147483647; a worker chooses
    /// one when absent.
    #[serde(
        default,
        deserialize_with = "crate::numbers::integer",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 2147483647))]
    pub sampler_seed: Option<u32>,
}

/// Most stop sequences a request may carry, and the longest one (in characters).
const STOP_SEQUENCES_MAX: usize = 128;
const STOP_SEQUENCE_CHARS_MAX: usize = 1000;
/// Most entries of `sampler_order`, and the largest (KoboldCpp numbers its samplers 0–6).
const SAMPLER_ORDER_MAX: usize = 16;
const SAMPLER_MAX: u32 = 15;

impl Samplers {
    /// Refuses values outside the ranges AI Horde documents (a worker's backend would refuse
    /// or misbehave on them: a temperature of 1e308, a top_p of −1e300, 100,000 stop
    /// sequences), naming the field.
    pub fn check(&self) -> Result<(), FieldError> {
        let ranges: [(&'static str, Option<f64>, f64, f64); 13] = [
            ("temperature", self.temperature, 0.0, 5.0),
            ("top_p", self.top_p, 0.001, 1.0),
            ("top_k", self.top_k.map(f64::from), 0.0, 100.0),
            ("top_a", self.top_a, 0.0, 1.0),
            ("typical", self.typical, 0.0, 1.0),
            ("tfs", self.tfs, 0.0, 1.0),
            ("min_p", self.min_p, 0.0, 1.0),
            ("rep_pen", self.rep_pen, 1.0, 3.0),
            (
                "rep_pen_range",
                self.rep_pen_range.map(f64::from),
                0.0,
                4096.0,
            ),
            ("rep_pen_slope", self.rep_pen_slope, 0.0, 10.0),
            ("dynatemp_range", self.dynatemp_range, 0.0, 5.0),
            ("dynatemp_exponent", self.dynatemp_exponent, 0.0, 5.0),
            ("smoothing_factor", self.smoothing_factor, 0.0, 10.0),
        ];
        for (field, value, low, high) in ranges {
            if let Some(value) = value {
                if !(low..=high).contains(&value) {
                    return Err(FieldError::new(
                        field,
                        format!("{field} must be from {low} to {high}, not {value}"),
                    ));
                }
            }
        }
        if let Some(stops) = &self.stop_sequence {
            if stops.len() > STOP_SEQUENCES_MAX {
                return Err(FieldError::new(
                    "stop_sequence",
                    format!(
                        "at most {STOP_SEQUENCES_MAX} stop sequences, not {}",
                        stops.len()
                    ),
                ));
            }
            if stops
                .iter()
                .any(|s| s.chars().count() > STOP_SEQUENCE_CHARS_MAX)
            {
                return Err(FieldError::new(
                    "stop_sequence",
                    format!("a stop sequence may be at most {STOP_SEQUENCE_CHARS_MAX} characters"),
                ));
            }
        }
        if let Some(seed) = self.sampler_seed.filter(|&s| s > i32::MAX as u32) {
            return Err(FieldError::new(
                "sampler_seed",
                format!("sampler_seed must be from 0 to {}, not {seed}", i32::MAX),
            ));
        }
        if let Some(order) = &self.sampler_order {
            if order.len() > SAMPLER_ORDER_MAX || order.iter().any(|&s| s > SAMPLER_MAX) {
                return Err(FieldError::new(
                    "sampler_order",
                    format!(
                        "sampler_order lists at most {SAMPLER_ORDER_MAX} samplers numbered 0 to \
                         {SAMPLER_MAX}"
                    ),
                ));
            }
        }
        Ok(())
    }
}
