//! The schema's migrations are embedded at compile time (`refinery::embed_migrations!`):
//! a migration added or edited must rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
