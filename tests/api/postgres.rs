//! A real PostgreSQL for the store tests: CRAMP_CDS_TEST_POSTGRES_URL names
//! a server (CI starts one on loopback); each test gets its own database.

use sqlx::Connection;

pub fn admin_url() -> Option<String> {
    match std::env::var("CRAMP_CDS_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CRAMP_CDS_REQUIRE_POSTGRES").is_none(),
                "CRAMP_CDS_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipping: CRAMP_CDS_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A fresh, empty database; its URL.
pub async fn postgres_database() -> Option<String> {
    let admin = admin_url()?;
    let name = format!("cramp_test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect(&admin)
        .await
        .expect("the test PostgreSQL is reachable");
    // The name is ours (a uuid), not input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .unwrap();
    let (base, _) = admin
        .rsplit_once('/')
        .expect("a database URL ends in /database");
    Some(format!("{base}/{name}"))
}
