//! Whole numbers as KoboldAI clients send them: `100` or `100.0`.

use serde::{Deserialize, Deserializer};

/// A whole number given as `100` or `100.0`, at most `i32::MAX` (KoboldAI and KoboldCpp read
/// these fields as C ints; the schema says `int32`).
fn whole(value: f64) -> Option<u32> {
    (value.fract() == 0.0 && (0.0..=f64::from(i32::MAX)).contains(&value)).then_some(value as u32)
}

pub(crate) fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<f64>::deserialize(deserializer)?;
    value
        .map(|v| whole(v).ok_or_else(|| serde::de::Error::custom("expected a whole number")))
        .transpose()
}

pub(crate) fn integers<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<u32>>, D::Error> {
    let values = Option::<Vec<f64>>::deserialize(deserializer)?;
    values
        .map(|list| {
            list.into_iter()
                .map(|v| whole(v).ok_or_else(|| serde::de::Error::custom("expected whole numbers")))
                .collect()
        })
        .transpose()
}
