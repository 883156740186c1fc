//! A backend that fails, dies or is too slow: faulted submits, no pops while it is down,
//! deadlines respected.

use std::time::Duration;

use serde_json::json;

use crate::backends::{kobold_united, koboldcpp};
use crate::support::{eventually, worker_args, Backend, Behavior, Freezer, Horde, Worker};

const SECS_30: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_failing_backend_faults_and_another_worker_serves_the_request() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let broken = Backend::start(koboldcpp).await;
    broken.behave(Behavior {
        fail: true,
        ..Behavior::default()
    });
    let id = horde
        .request(&client, "Hello", json!({ "max_length": 20 }))
        .await;
    let mut args = worker_args(&horde, &owner, "broken", &broken.url);
    args.extend(["--backend-retries", "2"]);
    let mut worker = Worker::start(&args);
    let failed = worker.wait_logged("job failed", 1, SECS_30).await;
    assert!(
        failed[0]["error"].as_str().unwrap().contains("500"),
        "{failed:?}"
    );
    // Stop it: it may have taken the request again meanwhile; that job faults too.
    worker.signal("TERM");
    assert!(worker.exited(SECS_30).await.success());
    let faults = worker.logged("job failed").len();
    assert!((1..=2).contains(&faults), "{faults}");
    let tries = broken.state.seen.lock().generates.len();
    assert_eq!(tries, 2 * faults, "two tries per job, then faulted");
    let status = horde.status(&id).await;
    assert_eq!(status["restarted"], faults, "{status}");
    assert_eq!(status["waiting"], 1, "{status}");
    assert_eq!(
        horde.kudos(&owner).await,
        0.0,
        "a faulted job earns nothing"
    );

    let healthy = Backend::start(koboldcpp).await;
    let _worker = Worker::start(&worker_args(&horde, &owner, "healthy", &healthy.url));
    let status = horde.wait_done(&id, SECS_30).await;
    assert_eq!(status["generations"][0]["worker_name"], "healthy");
}

#[tokio::test]
async fn a_backend_refusing_a_job_is_not_asked_again() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let (_, client) = horde.register("client").await;
    let backend = Backend::start(koboldcpp).await;
    backend.behave(Behavior {
        refuse: true,
        ..Behavior::default()
    });
    let id = horde
        .request(&client, "Far too long", json!({ "max_length": 20 }))
        .await;
    let mut args = worker_args(&horde, &owner, "refused", &backend.url);
    args.extend(["--backend-retries", "3"]);
    let mut worker = Worker::start(&args);
    let failed = worker.wait_logged("job failed", 1, SECS_30).await;
    assert!(
        failed[0]["error"].as_str().unwrap().contains("400"),
        "{failed:?}"
    );
    worker.signal("TERM");
    assert!(worker.exited(SECS_30).await.success());
    let faults = worker.logged("job failed").len();
    let tries = backend.state.seen.lock().generates.len();
    assert_eq!(tries, faults, "one try per job: a refusal is not retried");
    assert!(worker.logged("retrying").is_empty(), "no retry was logged");
    let status = horde.status(&id).await;
    assert_eq!(status["restarted"], faults, "{status}");
}

#[tokio::test]
async fn a_backend_that_is_down_gets_no_jobs_until_it_is_back() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let mut backend = Backend::start(koboldcpp).await;
    let worker = Worker::start(&worker_args(&horde, &owner, "w", &backend.url));
    worker.wait_logged("serving", 1, SECS_30).await;
    backend.stop();
    worker
        .wait_logged("the backend stopped answering", 1, SECS_30)
        .await;
    let id = horde
        .request(&owner, "Anyone?", json!({ "max_length": 20 }))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = horde.status(&id).await;
    assert_eq!(
        (
            &status["waiting"],
            &status["processing"],
            &status["restarted"]
        ),
        (&json!(1), &json!(0), &json!(0)),
        "no pop while the backend is down: {status}"
    );
    backend.start_again().await;
    horde.wait_done(&id, SECS_30).await;
    assert_eq!(worker.logged("the backend is back").len(), 1);
    assert!(worker.logged("job failed").is_empty());
}

#[tokio::test]
async fn past_its_deadline_a_job_is_aborted_and_not_submitted() {
    let horde = Horde::with_job_timeout(3).await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(koboldcpp).await;
    backend.behave(Behavior {
        delay: Duration::from_secs(60),
        ..Behavior::default()
    });
    let id = horde
        .request(&owner, "Slowly", json!({ "max_length": 20 }))
        .await;
    let worker = Worker::start(&worker_args(&horde, &owner, "slow", &backend.url));
    let late = worker
        .wait_logged("job ran past its deadline", 1, SECS_30)
        .await;
    let job = late[0]["job"].as_str().unwrap();
    let genkey = format!("HORDEREQ_{job}");
    eventually("the abort", SECS_30, || async {
        backend
            .state
            .seen
            .lock()
            .aborts
            .contains(&genkey)
            .then_some(())
    })
    .await;
    // The horde takes the job back (at its deadline, or sooner: the worker asking for work
    // while it still held it gives it back) and hands it out again — perhaps once more to the
    // still slow backend, before the test makes it fast.
    backend.behave(Behavior::default());
    let status = horde.wait_done(&id, SECS_30).await;
    let restarted = status["restarted"].as_u64().unwrap_or(0);
    assert!((1..=2).contains(&restarted), "{status}");
    let done = worker.wait_logged("job done", 1, SECS_30).await;
    assert_ne!(done[0]["job"], job, "the late job was not submitted");
    assert!(worker.logged("job done").len() == 1 && worker.logged("job failed").is_empty());
}

/// A backend that hangs (its socket open, no answer ever, as a frozen KoboldCpp): the worker's
/// check before a pop gives up within its bound and says so, takes no job, and a SIGTERM ends
/// it promptly (it used to wait forever, silent, through two SIGTERMs).
#[tokio::test]
async fn a_hung_backend_is_noticed_and_a_stop_still_stops_the_worker() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(koboldcpp).await;
    let freezer = Freezer::start(&backend.url).await;
    let mut worker = Worker::start(&worker_args(&horde, &owner, "w", &freezer.url));
    worker.wait_logged("serving", 1, SECS_30).await;
    freezer.freeze();
    worker
        .wait_logged("the backend stopped answering", 1, SECS_30)
        .await;
    let id = horde
        .request(&owner, "Anyone?", json!({ "max_length": 20 }))
        .await;
    worker.signal("TERM");
    let exited = worker.exited(Duration::from_secs(15)).await;
    assert!(exited.success(), "{exited:?}");
    let status = horde.status(&id).await;
    assert_eq!(status["processing"], json!(0), "a job was taken: {status}");
}

/// A backend whose answer never ends — a JSON body (KoboldAI) or an event stream (KoboldCpp) —
/// is cut off at the job's bound: the job is faulted, nothing of it is submitted, and the
/// worker's memory stays small (it used to hold a 300 MB answer and submit it whole).
#[tokio::test]
async fn an_endless_answer_is_cut_off_and_the_job_faulted() {
    for (routes, kind) in [(kobold_united as fn(_) -> _, "JSON"), (koboldcpp, "stream")] {
        let horde = Horde::start().await;
        let (_, owner) = horde.register("owner").await;
        let backend = Backend::start(routes).await;
        backend.behave(Behavior {
            endless: true,
            ..Behavior::default()
        });
        let id = horde
            .request(&owner, "Go on", json!({ "max_length": 20 }))
            .await;
        let mut args = worker_args(&horde, &owner, "w", &backend.url);
        args.extend(["--backend-retries", "1"]);
        let mut worker = Worker::start(&args);
        let failed = worker.wait_logged("job failed", 1, SECS_30).await;
        let error = failed[0]["error"].as_str().unwrap();
        assert!(error.contains("went on beyond 84 KiB"), "{kind}: {error}");
        let rss_mib = worker.rss_kib() / 1024;
        assert!(rss_mib < 100, "{kind}: the worker holds {rss_mib} MiB");
        worker.signal("TERM");
        assert!(worker.exited(SECS_30).await.success());
        let status = horde.status(&id).await;
        assert!(status["restarted"].as_u64() >= Some(1), "{kind}: {status}");
        assert_eq!(status["finished"], 0, "{kind}: {status}");
    }
}

/// A backend killed in the middle of a job and started again a few seconds later: the job
/// waits for it and is served, instead of being faulted after its tries ran out in ~3 s.
#[tokio::test]
async fn a_backend_restarted_mid_job_serves_the_job_when_it_is_back() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let mut backend = Backend::start(koboldcpp).await;
    backend.behave(Behavior {
        delay: Duration::from_secs(60),
        ..Behavior::default()
    });
    let id = horde
        .request(&owner, "Hold on", json!({ "max_length": 20 }))
        .await;
    let mut args = worker_args(&horde, &owner, "w", &backend.url);
    args.extend(["--backend-retries", "2"]);
    let worker = Worker::start(&args);
    eventually("the job on the backend", SECS_30, || async {
        (!backend.state.seen.lock().generates.is_empty()).then_some(())
    })
    .await;
    backend.stop();
    worker
        .wait_logged("cannot reach the backend; the job waits", 1, SECS_30)
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    backend.behave(Behavior::default());
    backend.start_again().await;
    let status = horde.wait_done(&id, SECS_30).await;
    assert_eq!(status["restarted"], 0, "{status}");
    worker.wait_logged("job done", 1, SECS_30).await;
    assert!(worker.logged("job failed").is_empty());
}

/// Two stop signals end the worker within a bound even when the backend hangs in the middle
/// of a job (its abort never answered, and the worker waited forever).
#[tokio::test]
async fn a_second_stop_ends_the_worker_whatever_hangs() {
    let horde = Horde::start().await;
    let (_, owner) = horde.register("owner").await;
    let backend = Backend::start(koboldcpp).await;
    backend.behave(Behavior {
        delay: Duration::from_secs(120),
        ..Behavior::default()
    });
    let freezer = Freezer::start(&backend.url).await;
    let id = horde
        .request(&owner, "Frozen", json!({ "max_length": 20 }))
        .await;
    let mut worker = Worker::start(&worker_args(&horde, &owner, "w", &freezer.url));
    eventually("the job on the backend", SECS_30, || async {
        (!backend.state.seen.lock().generates.is_empty()).then_some(())
    })
    .await;
    freezer.freeze();
    worker.signal("TERM");
    worker.wait_logged("stopping", 1, SECS_30).await;
    worker.signal("TERM");
    let exited = worker.exited(Duration::from_secs(30)).await;
    assert!(exited.success(), "{exited:?}");
    worker.wait_logged("job abandoned", 1, SECS_30).await;
    let status = horde.status(&id).await;
    assert_eq!(status["processing"], 0, "{status}");
}
