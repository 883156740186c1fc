//! Error answers: the body every refusal carries, and a field that failed a wire rule.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Rc;

/// Every error answer: `{"message", "rc"}`, plus `errors` (field → message) for a field that
/// failed validation.
//
// `rc` is text so that a body from another horde, with an `rc` this crate does not know, still
// parses; `ErrorBody::code` reads it as an `Rc`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub message: String,
    /// What went wrong, for programs.
    #[cfg_attr(feature = "openapi", schema(value_type = Rc))]
    pub rc: Cow<'static, str>,
    /// The field that failed validation, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, String>>,
}

impl ErrorBody {
    /// The body for `rc` and `message`.
    pub fn new(rc: Rc, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            message: message.into(),
            rc: Cow::Borrowed(rc.as_str()),
            errors: None,
        }
    }

    /// The `rc`, if this crate knows it.
    pub fn code(&self) -> Option<Rc> {
        self.rc.parse().ok()
    }
}

/// A field that breaks a rule of the wire (a range, a length), and why.
///
/// ```
/// use horde_api::Samplers;
/// let samplers = Samplers { temperature: Some(9.0), ..Samplers::default() };
/// let error = samplers.check().unwrap_err();
/// assert_eq!(error.field, "temperature");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The field's name on the wire.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// `field` is wrong because of `message`.
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}
