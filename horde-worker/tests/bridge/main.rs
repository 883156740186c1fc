//! The real `horde-worker` binary between a real horde-server and test backends on loopback
//! (and, when `HORDE_LLAMA_PYTHON` names a Python with llama-cpp-python, a real
//! OpenAI-compatible server).

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod backends;
mod faults;
mod jobs;
mod lifecycle;
mod llama;
mod streams;
mod support;
