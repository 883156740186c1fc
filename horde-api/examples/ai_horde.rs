//! Generates text on a horde — AI Horde's public one by default — with the anonymous key.
//!
//! ```sh
//! cargo run -p horde-api --example ai_horde -- "Once upon a time"
//! HORDE_URL=http://127.0.0.1:7001 cargo run -p horde-api --example ai_horde -- "Hello"
//! ```
//!
//! The types are the ones horde-server answers with; the ones this example reads are the
//! text endpoints AI Horde shares (heartbeat, async generation, status).

use std::time::Duration;

use horde_api::{AsyncRequest, Client, ClientError, ParamsIn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let url = std::env::var("HORDE_URL").unwrap_or_else(|_| "https://aihorde.net".into());
    let key = std::env::var("HORDE_API_KEY").unwrap_or_else(|_| "0000000000".into());
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Once upon a time".into());

    let horde = Client::new(&url)?
        .api_key(key)
        .client_agent("horde-api-example:0.1:none");
    let heartbeat = horde.heartbeat().await?;
    println!(
        "{url}: {} (version {})",
        heartbeat.message, heartbeat.version
    );

    let request = AsyncRequest {
        params: Some(ParamsIn {
            max_length: Some(80),
            ..ParamsIn::default()
        }),
        ..AsyncRequest::prompt(prompt)
    };
    let queued = horde.generate(&request).await?;
    println!("queued {} (estimated {} kudos)", queued.id, queued.kudos);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let status = horde.status(&queued.id).await?;
        if status.done || status.faulted {
            for generation in &status.generations {
                println!(
                    "[{} on {}]\n{}",
                    generation.model, generation.worker_name, generation.text
                );
            }
            return Ok(());
        }
        println!(
            "position {}, ~{} s",
            status.queue_position, status.wait_time
        );
    }
}
