//! The OpenAI-compatible wire horde-server also speaks (`/v1/models`, `/v1/completions`,
//! `/v1/chat/completions`): requests as the `openai` SDKs send them, answers and stream chunks
//! as they parse them, and errors in OpenAI's shape.
//!
//! Requests are lenient, as OpenAI's own server is: fields this horde does not use (`logprobs`,
//! `tools`, `response_format`, …) are ignored; what a field may hold is checked by the server,
//! which names the field in its 400.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A string or a list of strings (`prompt`, `stop`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings, in order.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and no choices) before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` (others are passed to the template as they
    /// are).
    pub role: String,
    /// Text, or a list of parts of which only `text` parts are understood.
    #[serde(default)]
    pub content: Value,
    /// The speaker's name, when the client gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `POST /v1/completions` and `POST /v1/chat/completions` (the fields of both; `prompt` for
/// the one, `messages` for the other).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// A horde model name, several separated by commas, or `*` (any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Completions: the prompt (a string, or a list holding one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<OneOrMany>,
    /// Chat: the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    /// Tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<Value>,
    /// Chat's newer name for `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<Value>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Where to stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<OneOrMany>,
    /// Choices wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<Value>,
    /// The sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<Value>,
    /// Accepted; no backend of a horde worker has an equivalent that a job carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Accepted; mapped to a repetition penalty when positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// The end user, for the client's own bookkeeping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Options of a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

/// Token counts of an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt (the horde's estimate).
    pub prompt_tokens: u32,
    /// Tokens generated (as the horde counted them for the reward).
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
}

/// A chat message in an answer (`message`) or a stream chunk (`delta`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageOut {
    /// `assistant` (in a chunk, only the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The text (in a chunk, the new part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of an answer or chunk: `text` for completions, `message` or `delta` for chat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// Which of the `n` choices.
    pub index: u32,
    /// Completions: the text (in a chunk, the new part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Chat: the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageOut>,
    /// Chat stream: the new part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<MessageOut>,
    /// Always null: no log probabilities.
    #[serde(default)]
    pub logprobs: Option<Value>,
    /// `stop`, `length`; null in a chunk that is not the last of its choice.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// An answer (`text_completion`, `chat.completion`) or a stream chunk (`text_completion`,
/// `chat.completion.chunk`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// `cmpl-…` or `chatcmpl-…` followed by the horde request id.
    pub id: String,
    /// The kind of object.
    pub object: String,
    /// Unix seconds when the request was accepted.
    pub created: u64,
    /// The model that generated it (the worker's).
    pub model: String,
    /// The choices (none in a stream's usage chunk).
    pub choices: Vec<Choice>,
    /// Token counts (in a stream, only in the usage chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One model of `GET /v1/models`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// Its name, as a request's `model` names it.
    pub id: String,
    /// `model`.
    pub object: String,
    /// 0: unknown.
    pub created: u64,
    /// `horde`.
    pub owned_by: String,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    /// The models with an online worker.
    pub data: Vec<Model>,
}

/// An error as OpenAI's clients parse it: `{"error": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: OpenAiError,
}

/// What went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAiError {
    /// For people.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `rate_limit_error`, `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field to blame, if one is.
    pub param: Option<String>,
    /// The horde's rc (`InvalidAPIKey`, `KudosUpfront`, …) or OpenAI's code
    /// (`model_not_found`).
    pub code: Option<String>,
}
