//! Names as the OpenAPI description states them: at least one visible character and none that
//! hide or disguise text (what [`horde_core::name_problem`] refuses), within their length
//! limits. These types exist only for the description (feature `openapi`).

/// Characters `horde_core::name_problem` refuses, as a regex class body.
const HIDDEN: &str = "\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff";

/// A string schema of `min..=max` characters, visible and without hidden characters or any
/// of `banned`.
fn visible_name(
    min: usize,
    max: usize,
    banned: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let pattern = format!("^[^{banned}{HIDDEN}]*[^{banned}\\s{HIDDEN}][^{banned}{HIDDEN}]*$");
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
