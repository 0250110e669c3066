//! Every JSON request body condod's API takes, read as condod reads them (serde_json through
//! serde_path_to_error, which names the field at fault).
//!
//! Checks: no panic, no hang, no runaway memory; a body that is accepted serializes and reads
//! back equal (what condod stores is what it was sent); the restart policy's text form reads
//! back the same; every refusal names a path that can be printed.
#![no_main]

use condo_api::{
    ContainerCreate, ContainerRebase, ContainerRename, ContainerUpdate, ExecCreate, ImagePull,
    NetworkCreate, Quota, RestartPolicy, SnapshotClone, SnapshotCreate, TemplateBuild,
    TenantCreate, TokenCreate, UserCreate, UserRole, VolumeCreate,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Reads `data` as condod's body extractor does; on success checks the round trip.
fn body<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => {
            let text = serde_json::to_vec(&v).expect("an accepted body serializes");
            let back: T = serde_json::from_slice(&text).expect("a serialized body reads back");
            assert_eq!(back, v, "{}", String::from_utf8_lossy(&text));
            Some(v)
        }
        Err(e) => {
            let _ = e.path().to_string();
            let _ = e.into_inner().to_string();
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(c) = body::<ContainerCreate>(data) {
        let text = c.restart.to_string();
        let back: RestartPolicy = text.parse().expect("a restart policy's text reads back");
        assert_eq!(back, c.restart);
    }
    body::<ContainerUpdate>(data);
    body::<ContainerRename>(data);
    body::<ExecCreate>(data);
    body::<SnapshotCreate>(data);
    body::<SnapshotClone>(data);
    body::<TemplateBuild>(data);
    body::<ContainerRebase>(data);
    body::<ImagePull>(data);
    body::<NetworkCreate>(data);
    body::<VolumeCreate>(data);
    body::<Quota>(data);
    body::<TenantCreate>(data);
    body::<UserCreate>(data);
    body::<UserRole>(data);
    body::<TokenCreate>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = s.parse::<RestartPolicy>() {
            let again: RestartPolicy = p.to_string().parse().expect("a policy's text reads back");
            assert_eq!(again, p);
        }
    }
});
