//! A chat becomes a prompt: the messages rendered through the model's chat template.
//!
//! Templates are Hugging Face-style Jinja (what GGUF files carry in `tokenizer.chat_template`),
//! rendered by `minijinja` with Python's string methods (`pycompat`), `trim_blocks` and
//! `lstrip_blocks` as Hugging Face sets them, and the variables such templates read:
//! `messages` (`role`, `content`, `name`), `add_generation_prompt` (true), `bos_token` and
//! `eos_token` (empty: backends add their own BOS, and the end of a turn is a stop sequence),
//! and `raise_exception(message)`. A model of the reference may have its own template (its
//! text, or the name of one of the [`BUILT_IN`] templates) and its end-of-turn stop sequences;
//! every other model gets [`DEFAULT_TEMPLATE`] (ChatML), whose stop sequences are
//! [`DEFAULT_STOP`].

use minijinja::{context, Environment, Error, ErrorKind};
use serde::Serialize;

/// The template of models the reference gives none: ChatML.
pub const DEFAULT_TEMPLATE: &str = "{% for message in messages %}\
<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n\
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// The stop sequences of [`DEFAULT_TEMPLATE`].
pub const DEFAULT_STOP: &[&str] = &["<|im_end|>", "<|im_start|>"];

/// The templates a reference may name instead of giving the text: `chatml`, `llama3`
/// (Llama 3, 3.1, 3.2, 3.3 instruct), `mistral` (`[INST]`; a system message goes before the
/// first user message) and `gemma` (Gemma 2 instruct; the same for system messages), each
/// with its stop sequences.
pub const BUILT_IN: &[(&str, &str, &[&str])] = &[
    ("chatml", DEFAULT_TEMPLATE, DEFAULT_STOP),
    (
        "llama3",
        "{% for message in messages %}<|start_header_id|>{{ message.role }}<|end_header_id|>{{ '\n\n' }}{{ message.content | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{{ '\n\n' }}{% endif %}",
        &["<|eot_id|>", "<|start_header_id|>"],
    ),
    (
        "mistral",
        "{% set ns = namespace(system='') %}{% for message in messages %}{% if message.role == 'system' %}{% set ns.system = ns.system + message.content + '\n\n' %}{% elif message.role == 'user' %}[INST] {{ ns.system }}{{ message.content }} [/INST]{% set ns.system = '' %}{% else %}{{ message.content }}</s>{% endif %}{% endfor %}",
        &["</s>", "[INST]"],
    ),
    (
        "gemma",
        "{% set ns = namespace(system='') %}{% for message in messages %}{% if message.role == 'system' %}{% set ns.system = ns.system + message.content + '\n\n' %}{% else %}<start_of_turn>{{ 'model' if message.role == 'assistant' else message.role }}{{ '\n' }}{% if message.role == 'user' %}{{ ns.system }}{% set ns.system = '' %}{% endif %}{{ message.content | trim }}<end_of_turn>{{ '\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}<start_of_turn>model{{ '\n' }}{% endif %}",
        &["<end_of_turn>", "<start_of_turn>"],
    ),
];

/// The text and stop sequences of the built-in template `name`.
pub fn built_in(name: &str) -> Option<(&'static str, &'static [&'static str])> {
    BUILT_IN
        .iter()
        .find(|(known, _, _)| *known == name)
        .map(|(_, text, stop)| (*text, *stop))
}

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

/// Returns an error that says what is wrong if `template` (a text, or a built-in's name)
/// does not compile.
pub fn check(template: &str) -> Result<(), String> {
    if built_in(template).is_some() {
        return Ok(());
    }
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
    fn the_built_in_templates_render_their_formats() {
        let chat = [
            turn("system", "Be brief."),
            turn("user", "Hi"),
            turn("assistant", "Hello."),
            turn("user", "Bye"),
        ];
        let render_named = |name| render(built_in(name).unwrap().0, &chat).unwrap();
        assert_eq!(
            render_named("llama3"),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        assert_eq!(
            render_named("mistral"),
            "[INST] Be brief.\n\nHi [/INST]Hello.</s>[INST] Bye [/INST]"
        );
        assert_eq!(
            render_named("gemma"),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n\
             <start_of_turn>model\nHello.<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        for (name, text, stop) in BUILT_IN {
            assert!(check(name).is_ok() && check(text).is_ok(), "{name}");
            assert!(!stop.is_empty());
        }
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
