//! Teams through HTTP: created by trusted users, joined by workers, their work counted.

use super::*;

#[tokio::test]
async fn teams_are_made_joined_counted_renamed_and_deleted() {
    let server = TestServer::start().await;
    let (_, admin) = server.admin("admin").await;
    let (lead_id, lead) = server.register("lead").await;
    let (_, volunteer) = server.register("volunteer").await;
    let (_, client) = server.register("client").await;
    let create = json!({ "name": "Night shift", "info": "GPUs after dark" });
    assert_error(
        &server.post("/teams", Some(&lead), create.clone()).await,
        StatusCode::FORBIDDEN,
        "UntrustedTeamCreation",
    );
    server
        .call(
            Method::PUT,
            &format!("/users/{lead_id}"),
            Some(&admin),
            Some(json!({ "trusted": true })),
        )
        .await;
    let (status, made) = server.post("/teams", Some(&lead), create.clone()).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["name"], "Night shift");
    let team = made["id"].as_str().unwrap().to_owned();
    let (status, _) = server.post("/teams", Some(&lead), create).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "names are unique");

    // A volunteer's worker joins, serves a request; the team counts it.
    pop(&server, &volunteer, "vol-gpu").await;
    let (_, worker) = server.get("/workers/name/vol-gpu", None).await;
    let worker_path = format!("/workers/{}", worker["id"].as_str().unwrap());
    assert_eq!(worker["team"], json!({ "id": null, "name": null }));
    let (status, joined) = server
        .call(
            Method::PUT,
            &worker_path,
            Some(&volunteer),
            Some(json!({ "team": team })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined, json!({ "team": "Night shift" }));
    assert_error(
        &server
            .call(
                Method::PUT,
                &worker_path,
                Some(&volunteer),
                Some(json!({ "team": "00000000-0000-0000-0000-000000000000" })),
            )
            .await,
        StatusCode::NOT_FOUND,
        "TeamNotFound",
    );
    request(&server, Some(&client), "For the team").await;
    let job = pop(&server, &volunteer, "vol-gpu").await;
    let (_, reward) = submit(&server, &volunteer, job["id"].as_str().unwrap(), "done.").await;
    let (_, shown) = server.get(&format!("/teams/{team}"), None).await;
    assert_eq!(shown["requests_fulfilled"], 1, "{shown}");
    assert_eq!(milli(&shown["kudos"]), milli(&reward["reward"]));
    assert_eq!(shown["creator"], format!("lead#{lead_id}"));
    assert_eq!(shown["worker_count"], 1);
    assert_eq!(shown["workers"][0]["name"], "vol-gpu");
    assert_eq!(shown["models"], json!([{ "name": MODEL, "count": 1 }]));
    let (_, worker) = server.get(&worker_path, None).await;
    assert_eq!(worker["team"], json!({ "id": team, "name": "Night shift" }));
    let page = server
        .client
        .get(format!(
            "{}{worker_path}",
            server.base.trim_end_matches("/api/v2")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<th>Team</th><td>Night shift</td>"), "{page}");
    let (_, all) = server.get("/teams", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    // Renamed by its creator only; kept across a restart.
    let team_path = format!("/teams/{team}");
    assert_error(
        &server
            .call(
                Method::PATCH,
                &team_path,
                Some(&volunteer),
                Some(json!({ "name": "Mine now" })),
            )
            .await,
        StatusCode::FORBIDDEN,
        "WrongCredentials",
    );
    let (status, renamed) = server
        .call(
            Method::PATCH,
            &team_path,
            Some(&lead),
            Some(json!({ "name": "Day shift" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Day shift");
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (_, shown) = server.get(&team_path, None).await;
    assert_eq!(shown["name"], "Day shift");
    assert_eq!(shown["requests_fulfilled"], 1);

    // Deleted: its worker leaves it.
    let (status, deleted) = server
        .call(Method::DELETE, &team_path, Some(&lead), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        deleted,
        json!({ "deleted_id": team, "deleted_name": "Day shift" })
    );
    assert_error(
        &server.get(&team_path, None).await,
        StatusCode::NOT_FOUND,
        "TeamNotFound",
    );
    let (_, worker) = server.get(&worker_path, None).await;
    assert_eq!(worker["team"], json!({ "id": null, "name": null }));
    server.stop().await;
}
