//! Fails when the JSON Schemas committed under `proto/schemas/` differ from what the types
//! generate. Run with `ZHZJ_BLESS=1` to rewrite them.

use std::path::PathBuf;

#[test]
fn committed_schemas_match_the_code() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let bless = std::env::var_os("ZHZJ_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, content) in zhzj_proto::schemas::all() {
        let file = dir.join(&path);
        if bless {
            std::fs::create_dir_all(file.parent().expect("schema files live in a folder"))
                .expect("create schema folder");
            std::fs::write(&file, &content).expect("write schema");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(existing) if existing == content => {}
            _ => stale.push(path),
        }
    }
    assert!(
        stale.is_empty(),
        "JSON Schemas out of date: {stale:?}; run `ZHZJ_BLESS=1 cargo test -p zhzj-proto` and commit"
    );
}
