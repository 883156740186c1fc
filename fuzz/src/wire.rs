//! Arbitrary bytes into every JSON request body of the API: parsing never panics, and a
//! request that parses goes through the core's validation without panicking either. Shared
//! by the `wire_json` fuzz target and an ordinary test that replays the seeds.

use horde_core::{Horde, HordeConfig, Timestamp, UserId};
use horde_server::wire::{
    request_spec, AsyncRequest, PopRequest, RegisterRequest, SubmitRequest, TransferRequest,
    UserUpdate, UsersQuery, WorkerUpdateRequest,
};

/// Parses `data` as each request type; validates what parses.
pub(crate) fn parse_requests(data: &[u8]) {
    let now = Timestamp::from_secs(1_700_000_000);
    if let Ok(request) = serde_json::from_slice::<AsyncRequest>(data) {
        if let Ok(spec) = request_spec(request, UserId::ANONYMOUS, now) {
            let mut horde = Horde::new(HordeConfig::default());
            let _ = horde.estimate(&spec, now);
            let _ = horde.enqueue(now, spec);
        }
    }
    // Whatever parses serialises again and reads back the same (clients build these types).
    if let Ok(pop) = serde_json::from_slice::<PopRequest>(data) {
        let again = serde_json::to_vec(&pop).expect("a parsed request serialises");
        let back: PopRequest = serde_json::from_slice(&again).expect("and parses again");
        assert_eq!(back, pop);
    }
    let _ = serde_json::from_slice::<SubmitRequest>(data);
    let _ = serde_json::from_slice::<RegisterRequest>(data);
    let _ = serde_json::from_slice::<TransferRequest>(data);
    let _ = serde_json::from_slice::<UserUpdate>(data);
    let _ = serde_json::from_slice::<WorkerUpdateRequest>(data);
    let _ = serde_json::from_slice::<UsersQuery>(data);
}
