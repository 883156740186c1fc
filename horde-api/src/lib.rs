//! `horde-api`: the typed wire of a text horde — AI Horde's v2 text API and horde's own
//! extensions — and a small async [`Client`].
//!
//! Every request and response body is a serde type here, used in both directions: horde-server
//! parses requests and answers with these types, and horde-cli, horde-worker and the tests
//! build and read the same ones, so a field added to an answer is one change the compiler
//! checks everywhere. Field names follow AI Horde's OpenAPI description; the differences are in
//! horde's `docs/api.md`.
//!
//! * [`requests`] and [`responses`]: the bodies; [`Samplers`] with the ranges a generation's
//!   parameters must keep ([`Samplers::check`]).
//! * [`Rc`] and [`ErrorBody`]: how every refusal reads.
//! * [`Client`] (feature `client`, on by default): one method per endpoint, bounded reads,
//!   errors that keep their cause. It speaks to any horde with the v2 text API, AI Horde's
//!   public one included (see `examples/`).
//! * [`openai`]: the OpenAI-compatible wire (`/v1/…`) horde-server also speaks.
//! * Feature `openapi`: `utoipa` schemas for every type, as horde-server publishes them.
//!
//! ```
//! use horde_api::{AsyncRequest, ParamsIn};
//!
//! let request = AsyncRequest {
//!     params: Some(ParamsIn { max_length: Some(120), ..ParamsIn::default() }),
//!     ..AsyncRequest::prompt("Hello")
//! };
//! let json = serde_json::to_string(&request).unwrap();
//! assert_eq!(json, r#"{"prompt":"Hello","params":{"max_length":120}}"#);
//! ```

mod error;
#[cfg(feature = "openapi")]
pub mod names;
mod numbers;
pub mod openai;
mod rc;
pub mod requests;
pub mod responses;
mod samplers;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod stream;

#[cfg(feature = "client")]
pub use client::{with_causes, Client, ClientError, DEFAULT_MAX_ANSWER_BYTES};
pub use error::{ErrorBody, FieldError};
pub use rc::{Rc, UnknownRc};
pub use requests::*;
pub use responses::*;
pub use samplers::Samplers;
#[cfg(feature = "client")]
pub use stream::{StreamEvent, TextStream};

/// The status and the `Method` type the client takes, re-exported for callers of
/// [`Client::call`].
#[cfg(feature = "client")]
pub use reqwest::{Method, StatusCode};
