//! The aggregates database's schema, as sqlx migrations in
//! `store/migrations/`: the sink writes these tables, the query API reads
//! them, `trib db migrate` applies them. Their versions start at 1000 so they can share a database (and sqlx's
//! migration history) with the registry's, whose versions are below 1000.
use sqlx::PgPool;

/// Applies every pending migration of the aggregates database.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}
