//! The vendored uPlot (`console/web/vendor/`, what the binary embeds) is
//! byte for byte the npm package pinned in `console/web/package-lock.json`,
//! once `npm ci` has installed it (`dev/setup` does; CI must have it).
use std::path::Path;

#[test]
fn vendored_uplot_is_the_pinned_npm_package() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let package = web.join("node_modules/uplot");
    if !package.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: run `npm ci` in console/web (dev/setup does)",
            package.display()
        );
        eprintln!(
            "skipped: {} is missing (run `npm ci` in console/web)",
            package.display()
        );
        return;
    }
    let version: serde_json::Value =
        serde_json::from_slice(&std::fs::read(package.join("package.json")).unwrap()).unwrap();
    assert_eq!(version["version"], "1.6.32");
    for (vendored, installed) in [
        ("vendor/uPlot.iife.min.js", "dist/uPlot.iife.min.js"),
        ("vendor/uPlot.min.css", "dist/uPlot.min.css"),
        ("vendor/uPlot.LICENSE", "LICENSE"),
    ] {
        let ours = std::fs::read(web.join(vendored)).unwrap();
        let theirs = std::fs::read(package.join(installed)).unwrap();
        assert!(
            ours == theirs,
            "{vendored} differs from node_modules/uplot/{installed}: copy it again"
        );
    }
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(web.join("package-lock.json")).unwrap()).unwrap();
    assert_eq!(lock["packages"]["node_modules/uplot"]["version"], "1.6.32");
}
