//! An OpenAI request becomes a horde request: the parameter mapping of docs/api.md, checked
//! field by field so that a 400 names the OpenAI field to blame.

use horde_core::ranges::{MAX_LENGTH, N};
use serde_json::Value;

use crate::chat::{self, Turn};
use crate::error::{ApiError, Rc};
use crate::wire::openai::{ChatMessage, CompletionRequest, OneOrMany};
use crate::wire::{AsyncRequest, ParamsIn, Samplers};

/// What a call asks for, in the horde's terms.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The horde request (prompt rendered, parameters mapped).
    pub(crate) request: AsyncRequest,
    /// Answer as server-sent events.
    pub(crate) stream: bool,
    /// Send a usage chunk at the end of a stream.
    pub(crate) include_usage: bool,
    /// The models asked for (empty: any).
    pub(crate) models: Vec<String>,
    /// Tokens to generate.
    pub(crate) max_length: u32,
}

/// Which model's chat template a chat renders with: the reference's entry for the one model
/// asked for, if it has one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Template {
    /// Its text (none: the default).
    pub(crate) text: Option<String>,
    /// Its end-of-turn stop sequences.
    pub(crate) stop: Vec<String>,
}

impl Template {
    /// The template of a reference entry: its text, or a built-in's (with the built-in's stop
    /// sequences unless the entry names its own).
    pub(crate) fn of(entry: &horde_core::reference::ReferenceEntry) -> Template {
        let Some(named) = entry.chat_template.as_deref() else {
            return Template::default();
        };
        match chat::built_in(named) {
            Some((text, stop)) => Template {
                text: Some(text.to_owned()),
                stop: if entry.chat_stop.is_empty() {
                    stop.iter().map(|s| (*s).to_owned()).collect()
                } else {
                    entry.chat_stop.clone()
                },
            },
            None => Template {
                text: Some(named.to_owned()),
                stop: entry.chat_stop.clone(),
            },
        }
    }
}

fn bad(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(Rc::ValidationError, param, message)
}

/// The models a `model` field names: several separated by commas, `*` for any.
pub(crate) fn models(model: Option<&str>) -> Result<Vec<String>, ApiError> {
    let model = model.map(str::trim).unwrap_or_default();
    if model.is_empty() {
        return Err(bad(
            "model",
            "model is required: a model this horde serves (GET /v1/models), several separated \
             by commas, or * for any",
        ));
    }
    if model == "*" {
        return Ok(Vec::new());
    }
    Ok(model
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A whole number in `range`, from a JSON number (`100` or `100.0`).
fn whole(
    value: Option<&Value>,
    param: &'static str,
    (low, high): (u32, u32),
) -> Result<Option<u32>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let number = value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                .map(|f| f as u64)
        })
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (low..=high).contains(n));
    number.map(Some).ok_or_else(|| {
        bad(
            param,
            format!(
                "{param} must be a whole number from {low} to {high} on this horde, not {value}"
            ),
        )
    })
}

/// The text of a message's `content`: a string, or the `text` parts of a list.
fn content(message: &ChatMessage) -> Result<String, ApiError> {
    match &message.content {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => {
            parts
                .iter()
                .map(|part| {
                    match (part["type"].as_str(), part["text"].as_str()) {
                (Some("text"), Some(text)) => Ok(text),
                _ => Err(bad(
                    "messages",
                    "only text is understood in a message's content (no images, audio or files)",
                )),
            }
                })
                .collect()
        }
        _ => Err(bad(
            "messages",
            "a message's content must be text or a list of text parts",
        )),
    }
}

/// The prompt of a chat, and the stop sequences its template adds.
fn chat_prompt(
    messages: &[ChatMessage],
    template: &Template,
) -> Result<(String, Vec<String>), ApiError> {
    if messages.is_empty() {
        return Err(bad("messages", "messages must hold at least one message"));
    }
    let turns = messages
        .iter()
        .map(|m| {
            Ok(Turn {
                role: m.role.clone(),
                content: content(m)?,
                name: m.name.clone(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let (text, stop) = match &template.text {
        Some(text) => (text.as_str(), template.stop.clone()),
        None => (
            chat::DEFAULT_TEMPLATE,
            chat::DEFAULT_STOP.iter().map(|s| (*s).to_owned()).collect(),
        ),
    };
    let prompt = chat::render(text, &turns).map_err(|e| bad("messages", e))?;
    Ok((prompt, stop))
}

/// The horde request for `body` (`template`: for a chat, the template of the model asked for).
pub(crate) fn plan(body: CompletionRequest, template: Option<&Template>) -> Result<Plan, ApiError> {
    let models = models(body.model.as_deref())?;
    let stream = body.stream.unwrap_or(false);
    let mut stop: Vec<String> = body.stop.map(OneOrMany::into_vec).unwrap_or_default();
    let prompt = match template {
        Some(template) => {
            let messages = body
                .messages
                .ok_or_else(|| bad("messages", "messages is required"))?;
            let (prompt, template_stop) = chat_prompt(&messages, template)?;
            stop.extend(template_stop.into_iter().filter(|s| !s.is_empty()));
            prompt
        }
        None => match body.prompt {
            Some(OneOrMany::One(prompt)) => prompt,
            Some(OneOrMany::Many(mut prompts)) if prompts.len() == 1 => prompts.remove(0),
            _ => {
                return Err(bad(
                    "prompt",
                    "prompt must be a string (or a list of one string)",
                ))
            }
        },
    };
    if prompt.is_empty() {
        return Err(bad("prompt", "the prompt must not be empty"));
    }
    let max_length = match whole(
        body.max_completion_tokens.as_ref(),
        "max_completion_tokens",
        MAX_LENGTH,
    )? {
        Some(n) => Some(n),
        None => whole(body.max_tokens.as_ref(), "max_tokens", MAX_LENGTH)?,
    };
    let n = whole(body.n.as_ref(), "n", N)?;
    if stream && n.is_some_and(|n| n > 1) {
        return Err(bad(
            "n",
            "a stream carries one choice: n must be 1 with stream",
        ));
    }
    for (param, value) in [
        ("presence_penalty", body.presence_penalty),
        ("frequency_penalty", body.frequency_penalty),
    ] {
        if value.is_some_and(|v| !(-2.0..=2.0).contains(&v)) {
            return Err(bad(param, format!("{param} must be from -2 to 2")));
        }
    }
    let seed = match body.seed.filter(|s| !s.is_null()) {
        None => None,
        Some(seed) => Some(
            seed.as_i64()
                .ok_or_else(|| bad("seed", "seed must be an integer"))?
                .rem_euclid(1 << 31),
        ),
    };
    let samplers = Samplers {
        temperature: body.temperature,
        top_p: body.top_p,
        stop_sequence: (!stop.is_empty()).then_some(stop),
        sampler_seed: seed.and_then(|s| u32::try_from(s).ok()),
        ..Samplers::default()
    };
    let max_length_or_default = max_length.unwrap_or(horde_core::GenParams::default().max_length);
    Ok(Plan {
        request: AsyncRequest {
            prompt: Some(prompt),
            params: Some(ParamsIn {
                n,
                max_length: Some(max_length_or_default),
                max_context_length: None,
                samplers,
            }),
            models: Some(models.clone()),
            ..AsyncRequest::default()
        },
        stream,
        include_usage: body.stream_options.is_some_and(|o| o.include_usage),
        models,
        max_length: max_length_or_default,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(body: Value) -> CompletionRequest {
        serde_json::from_value(body).unwrap()
    }

    fn param_of(error: ApiError) -> Option<&'static str> {
        match error {
            ApiError::Validation { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn openai_fields_map_to_the_hordes() {
        let plan = plan(
            request(json!({
                "model": "a, b", "prompt": ["Once"], "max_tokens": 64.0, "temperature": 0.7,
                "top_p": 0.9, "stop": "\n", "n": 2, "seed": -1, "user": "u", "logprobs": 3,
                "frequency_penalty": 0.5
            })),
            None,
        )
        .unwrap();
        assert_eq!(plan.models, ["a", "b"]);
        assert!(!plan.stream);
        let params = plan.request.params.unwrap();
        assert_eq!((params.n, params.max_length), (Some(2), Some(64)));
        assert_eq!(params.samplers.temperature, Some(0.7));
        assert_eq!(params.samplers.stop_sequence, Some(vec!["\n".to_owned()]));
        assert_eq!(params.samplers.sampler_seed, Some((1 << 31) - 1));
        assert_eq!(plan.request.prompt.as_deref(), Some("Once"));
    }

    #[test]
    fn a_chat_is_rendered_and_its_template_stops_added() {
        let plan = plan(
            request(json!({
                "model": "*", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
            })),
            Some(&Template::default()),
        )
        .unwrap();
        assert!(plan.models.is_empty() && plan.stream && plan.include_usage);
        assert!(plan
            .request
            .prompt
            .unwrap()
            .ends_with("<|im_start|>assistant\n"));
        let stops = plan.request.params.unwrap().samplers.stop_sequence.unwrap();
        assert_eq!(stops, chat::DEFAULT_STOP);
    }

    #[test]
    fn bad_values_name_their_field() {
        for (body, param) in [
            (json!({"prompt": "x"}), "model"),
            (json!({"model": "m"}), "prompt"),
            (json!({"model": "m", "prompt": ["a", "b"]}), "prompt"),
            (
                json!({"model": "m", "prompt": "x", "max_tokens": 5}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "prompt": "x", "max_tokens": 1.5}),
                "max_tokens",
            ),
            (json!({"model": "m", "prompt": "x", "n": 21}), "n"),
            (
                json!({"model": "m", "prompt": "x", "n": 2, "stream": true}),
                "n",
            ),
            (
                json!({"model": "m", "prompt": "x", "presence_penalty": 3}),
                "presence_penalty",
            ),
            (json!({"model": "m", "prompt": "x", "seed": "s"}), "seed"),
        ] {
            let error = plan(request(body.clone()), None).unwrap_err();
            assert_eq!(param_of(error), Some(param), "{body}");
        }
        let image = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "x"}}]}]});
        let error = plan(request(image), Some(&Template::default())).unwrap_err();
        assert_eq!(param_of(error), Some("messages"));
    }
}
