//! Configuration is validated when the layer is built (issue 3): each mistake is its own
//! error, with a message that says what to do.

use engine_ops_apiver::{
    ApiVersioning, Deprecation, Error, NoChange, ParseVersionError, Source, Version,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn v(major: u32) -> Version {
    Version::new(major, 0)
}

#[test]
fn each_mistake_is_an_error() {
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let base = || ApiVersioning::builder().versions(["v1", "v2"]);
    let cases: Vec<(Error, &str)> = vec![
        (
            ApiVersioning::builder().build().unwrap_err(),
            "no API version is declared",
        ),
        (
            base().version("v2.0").build().unwrap_err(),
            "version v2 is declared twice",
        ),
        (
            base().version("v1.").build().unwrap_err(),
            "\"v1.\" is not a version",
        ),
        (
            base().default_version(3).build().unwrap_err(),
            "the default version v3 is not declared",
        ),
        (
            base()
                .deprecate(1, Deprecation::since(now).sunset(now - day))
                .build()
                .unwrap_err(),
            "has its sunset",
        ),
        (
            base()
                .deprecate(3, Deprecation::since(now))
                .build()
                .unwrap_err(),
            "deprecate names version v3",
        ),
        (
            base()
                .deprecate(1, Deprecation::since(now))
                .deprecate("1.0", Deprecation::since(now))
                .build()
                .unwrap_err(),
            "deprecated twice",
        ),
        (
            base()
                .deprecate(1, Deprecation::since(UNIX_EPOCH - day))
                .build()
                .unwrap_err(),
            "outside 1970..9999",
        ),
        (
            base()
                .versions([3])
                .change(1, 2, NoChange)
                .build()
                .unwrap_err(),
            "gap: no change from v2 to v3",
        ),
        (
            base()
                .versions([3])
                .change(1, 3, NoChange)
                .build()
                .unwrap_err(),
            "skips version v2",
        ),
        (
            base().change(2, 1, NoChange).build().unwrap_err(),
            "goes backwards",
        ),
        (
            base().change(1, 4, NoChange).build().unwrap_err(),
            "change names version v4",
        ),
        (base().detect([]).build().unwrap_err(), "no version source"),
        (
            base()
                .detect([Source::header("bad header")])
                .build()
                .unwrap_err(),
            "not a valid header name",
        ),
        (
            base().detect([Source::query("")]).build().unwrap_err(),
            "query parameter name is empty",
        ),
        (
            base()
                .detect([Source::path_after("api")])
                .build()
                .unwrap_err(),
            "does not start with `/`",
        ),
        (
            base()
                .detect([Source::vendor_media_type("a b")])
                .build()
                .unwrap_err(),
            "not a valid vendor name",
        ),
        (
            base()
                .deprecate(1, Deprecation::since(now).successor_link("<bad>"))
                .build()
                .unwrap_err(),
            "successor-version link",
        ),
        (
            base()
                .deprecate(1, Deprecation::since(now).message("über"))
                .build()
                .unwrap_err(),
            "printable ASCII",
        ),
        (
            base().problem_type_base("not a uri").build().unwrap_err(),
            "problem type base",
        ),
    ];
    for (error, needle) in cases {
        let message = error.to_string();
        assert!(
            message.contains(needle),
            "{message:?} should contain {needle:?}"
        );
    }
}

#[test]
fn typed_errors() {
    let err = ApiVersioning::builder().version("v-1").build().unwrap_err();
    assert_eq!(
        err,
        Error::InvalidVersion {
            input: "v-1".into(),
            source: ParseVersionError::InvalidCharacter
        }
    );
    let err = ApiVersioning::builder()
        .versions([1, 2, 3])
        .change(1, 2, NoChange)
        .change(1, 2, NoChange)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        Error::ChangeGap {
            from: v(2),
            to: v(3)
        }
    );
}

#[test]
fn valid_configurations() {
    let now = SystemTime::now();
    // Sunset equal to the deprecation date; several changes per step; minor versions.
    let layer = ApiVersioning::builder()
        .versions(["1.0", "1.1", "2"])
        .default_version("1.1")
        .deprecate(
            "1.0",
            Deprecation::since(now).sunset(now).successor_version("1.1"),
        )
        .change("1.0", "1.1", NoChange)
        .change("1.1", "2", NoChange)
        .change("1.1", "2", NoChange)
        .detect([Source::path_after("/"), Source::media_type()])
        .build()
        .unwrap();
    assert_eq!(
        layer.versions(),
        [Version::new(1, 0), Version::new(1, 1), Version::new(2, 0)]
    );
    assert_eq!(layer.default_version(), Some(Version::new(1, 1)));
    assert_eq!(layer.latest(), Version::new(2, 0));
    let layer = ApiVersioning::builder()
        .versions([1])
        .require_version()
        .build()
        .unwrap();
    assert_eq!(layer.default_version(), None);
    // The layer is Clone + Debug and Send + Sync.
    fn assert_traits<T: Clone + std::fmt::Debug + Send + Sync + 'static>(_: &T) {}
    assert_traits(&layer);
    assert!(format!("{layer:?}").contains("ApiVersioningLayer"));
}
