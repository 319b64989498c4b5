//! Unit tests of the credential and scope decisions.

use super::*;
use crate::auth::token::Rights;
use crate::Config;

#[test]
fn tokens_of_another_kind_open_only_their_own_runs() {
    let mut config = Config::new("postgres://unused", "127.0.0.1:0".parse().unwrap());
    config.api_keys = vec!["k".into()];
    let auth = Auth::from_config(&config).unwrap();
    let claims = RunClaims {
        run: "wf::a".into(),
        rights: Rights::read(60),
    };
    let other = auth.signer.sign("dbos-run", &claims);
    let ours = auth.signer.run_token("wf::a", Rights::read(60));
    let caller = |cred: &str| Caller {
        who: identify(&auth, Some(cred)),
        client: "ip:test".into(),
        credential: Some(cred.into()),
        cookie: Arc::default(),
        token_in_query: false,
    };
    let c = caller(&other);
    assert!(c
        .require_run_of_kind(&auth, "dbos-run", "wf::a", Scope::Read)
        .is_ok());
    assert!(c
        .require_run_of_kind(&auth, "dbos-run", "wf::b", Scope::Read)
        .is_err());
    assert!(c
        .require_run_of_kind(&auth, "dbos-run", "wf::a", Scope::Approve)
        .is_err());
    assert!(
        c.require_run("wf::a", Scope::Read).is_err(),
        "not a flowgate run token"
    );
    let c = caller(&ours);
    assert!(c
        .require_run_of_kind(&auth, "dbos-run", "wf::a", Scope::Read)
        .is_err());
    assert!(caller("k")
        .require_run_of_kind(&auth, "dbos-run", "x", Scope::Approve)
        .is_ok());
    assert!(
        !format!("{c:?}").contains(&ours),
        "Debug leaves the credential out"
    );
}
