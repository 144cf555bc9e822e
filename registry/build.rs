//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!`
//! embeds `migrations/` at compile time, and cargo does not otherwise see a
//! new file there (sqlx's documented recommendation).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
