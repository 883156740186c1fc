//! Names as the OpenAPI description states them: at least one visible character and none that
//! hide or disguise text (what [`horde_core::name_problem`] refuses), within their length
//! limits. These types exist only for the description (feature `openapi`).

/// The characters `horde_core::name_problem` refuses ([`horde_core::HIDDEN_CHARACTERS`]), as
/// the body of a regex class: `\u0000-\u001f…\ufeff`.
fn hidden() -> String {
    horde_core::HIDDEN_CHARACTERS
        .iter()
        .map(|&(low, high)| {
            if low == high {
                format!("\\u{:04x}", u32::from(low))
            } else {
                format!("\\u{:04x}-\\u{:04x}", u32::from(low), u32::from(high))
            }
        })
        .collect()
}

/// A string schema of `min..=max` characters, visible and without hidden characters or any
/// of `banned`.
fn visible_name(
    min: usize,
    max: usize,
    banned: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let hidden = hidden();
    let pattern = format!("^[^{banned}{hidden}]*[^{banned}\\s{hidden}][^{banned}{hidden}]*$");
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

string_schema!(
    /// A user's alias: 1–50 characters, no `#`, visible, none hidden.
    Alias => visible_name(1, 50, "#")
);
string_schema!(
    /// A worker's name: 1–100 characters, visible, none hidden.
    WorkerName => visible_name(1, 100, "")
);
string_schema!(
    /// A model's name: at most 255 characters (an empty one is ignored).
    ModelName => utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(255))
        .into()
);
string_schema!(
    /// A user as `alias#id` (not the anonymous user, `#0`).
    Username => utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some("^[^#]+#0*[1-9][0-9]{0,17}$"))
        .into()
);
