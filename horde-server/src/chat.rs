//! A chat becomes a prompt: the messages rendered through the model's chat template.
//!
//! Templates are Hugging Face-style Jinja (what GGUF files carry in `tokenizer.chat_template`),
//! rendered by `minijinja` with Python's string methods (`pycompat`), `trim_blocks` and
//! `lstrip_blocks` as Hugging Face sets them, and the variables such templates read:
//! `messages` (`role`, `content`, `name`), `add_generation_prompt` (true), `bos_token` and
//! `eos_token` (empty: backends add their own BOS, and the end of a turn is a stop sequence),
//! and `raise_exception(message)`. A model of the reference may name its own template and its
//! end-of-turn stop sequences; every other model gets [`DEFAULT_TEMPLATE`] (ChatML), whose
//! stop sequences are [`DEFAULT_STOP`].

use minijinja::{context, Environment, Error, ErrorKind};
use serde::Serialize;

/// The template of models the reference gives none: ChatML.
pub const DEFAULT_TEMPLATE: &str = "{% for message in messages %}\
<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n\
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// The stop sequences of [`DEFAULT_TEMPLATE`].
pub const DEFAULT_STOP: &[&str] = &["<|im_end|>", "<|im_start|>"];

/// One message, as templates read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Turn {
    /// `system`, `user`, `assistant`, …
    pub role: String,
    /// Its text.
    pub content: String,
    /// The speaker's name, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env
}

/// Returns an error that says what is wrong if `template` does not compile.
pub fn check(template: &str) -> Result<(), String> {
    environment()
        .template_from_str(template)
        .map(drop)
        .map_err(|e| format!("its chat_template does not compile: {e}"))
}

/// The prompt for `turns` through `template`; the error is for the requester (a template that
/// refuses the conversation, e.g. roles that do not alternate).
pub fn render(template: &str, turns: &[Turn]) -> Result<String, String> {
    environment()
        .render_str(
            template,
            context! {
                messages => turns,
                add_generation_prompt => true,
                bos_token => "",
                eos_token => "",
            },
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidOperation => e.detail().unwrap_or("refused").to_owned(),
            _ => format!("the model's chat template failed: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: &str, content: &str) -> Turn {
        Turn {
            role: role.into(),
            content: content.into(),
            name: None,
        }
    }

    #[test]
    fn the_default_template_is_chatml_ending_in_the_assistants_turn() {
        let prompt = render(
            DEFAULT_TEMPLATE,
            &[turn("system", "Be brief."), turn("user", "Hi")],
        )
        .unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\n"
        );
    }

    #[test]
    fn hugging_face_templates_render_with_their_python_methods_and_exceptions() {
        // The shape of Llama 3's template: `.strip()`, `loop.index0`, `raise_exception`.
        let template = "{% for m in messages %}{% if m.role not in ['user', 'assistant', \
                        'system'] %}{{ raise_exception('bad role ' + m.role) }}{% endif %}\
                        <|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content | trim \
                        }}{{ m.content.strip()[:0] }}<|eot_id|>{% endfor %}\
                        {% if add_generation_prompt %}<|start_header_id|>assistant\
                        <|end_header_id|>\n\n{% endif %}";
        check(template).unwrap();
        let prompt = render(template, &[turn("user", " Hi ")]).unwrap();
        assert_eq!(
            prompt,
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        assert_eq!(
            render(template, &[turn("tool", "x")]).unwrap_err(),
            "bad role tool"
        );
        assert!(check("{% for %}").is_err());
    }
}
