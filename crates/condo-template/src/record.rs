//! The record of a build: the image config and manifest over the built layers, the image
//! record `name:version`, and the template metadata beside it.

use crate::build::{BuildError, Builder, Chain};
use crate::meta::{Limits, RenderedFile, TemplateMeta};
use crate::model::Template;
use crate::runner::PATH;
use crate::{params, steps};
use condo_storage::image::types::{Descriptor, Manifest, OCI_CONFIG, OCI_MANIFEST};
use condo_storage::Digest;
use serde_json::json;
use std::collections::BTreeMap;

impl Builder {
    pub(crate) fn record(
        &self,
        t: &Template,
        chain: &Chain,
        parent: Option<TemplateMeta>,
    ) -> Result<TemplateMeta, BuildError> {
        let r = &t.raw;
        let p = parent.unwrap_or_else(empty_meta);
        let mut env: BTreeMap<String, String> = p
            .env
            .iter()
            .filter_map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        env.entry("PATH".into())
            .or_insert_with(|| PATH["PATH=".len()..].into());
        env.extend(r.env.clone());
        let env: Vec<String> = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let workdir = r.workdir.clone().unwrap_or(p.workdir);
        let mut expose = p.expose;
        expose.extend(r.expose.iter().copied());
        expose.sort();
        expose.dedup();
        let mut volumes = p.volumes;
        volumes.extend(r.volumes.iter().map(|v| v.get_ref().clone()));
        volumes.dedup();
        let mut services = p.services;
        services.extend(
            r.services
                .iter()
                .map(|(k, v)| (k.clone(), v.get_ref().clone())),
        );
        let mut parameters = p.parameters;
        parameters.extend(t.params.clone());
        let mut first_start = p.first_start;
        first_start.extend(r.first_start.iter().cloned());
        let mut render = p.render;
        render.extend(steps::rendered(t).into_iter().map(|f| RenderedFile {
            source: steps::render_source(&f.dest),
            dest: f.dest.clone(),
            mode: f.mode,
            owner: f.owner.clone(),
        }));
        let res = &r.resources;
        let resources = Limits {
            memory: res
                .memory
                .as_deref()
                .and_then(|m| params::parse_size(m).ok())
                .or(p.resources.memory),
            cpus: res.cpus.or(p.resources.cpus),
            pids: res.pids.or(p.resources.pids),
            disk: res
                .disk
                .as_deref()
                .and_then(|m| params::parse_size(m).ok())
                .or(p.resources.disk),
        };
        let args = vec!["/bin/sh".to_string(), steps::INIT.to_string()];
        let exposed: serde_json::Map<String, serde_json::Value> = expose
            .iter()
            .map(|p| (format!("{p}/tcp"), json!({})))
            .collect();
        let vols: serde_json::Map<String, serde_json::Value> =
            volumes.iter().map(|v| (v.clone(), json!({}))).collect();
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": env, "Cmd": args, "WorkingDir": workdir,
                "ExposedPorts": exposed, "Volumes": vols,
                "Labels": {"org.condo.template": r.name.get_ref(), "org.condo.template.version": r.version.get_ref()}
            },
            "rootfs": {"type": "layers", "diff_ids": chain.diff_ids}
        });
        let cfg_bytes = serde_json::to_vec(&config).map_err(|e| BuildError::Io {
            path: t.dir.clone(),
            source: e.into(),
        })?;
        let cfg_digest = self.images.content().put(&cfg_bytes, None)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: OCI_CONFIG.into(),
                digest: cfg_digest,
                size: cfg_bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers: chain.layers.clone(),
        };
        let m_bytes = serde_json::to_vec(&manifest).map_err(|e| BuildError::Io {
            path: t.dir.clone(),
            source: e.into(),
        })?;
        let m_digest = self.images.content().put(&m_bytes, None)?;
        let image = t.image_name();
        self.images.put(
            &image,
            Descriptor {
                media_type: OCI_MANIFEST.into(),
                digest: m_digest.clone(),
                size: m_bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
        )?;
        let meta = TemplateMeta {
            name: r.name.get_ref().clone(),
            version: r.version.get_ref().clone(),
            description: r.description.clone(),
            image,
            manifest: m_digest,
            top_layer: chain.top.clone().unwrap_or_default(),
            layers: chain.layers.iter().map(|l| l.digest.clone()).collect(),
            parameters,
            services,
            first_start,
            volumes,
            expose,
            healthcheck: r.healthcheck.clone().or(p.healthcheck),
            resources,
            args,
            env,
            workdir,
            user: r.user.clone().unwrap_or(p.user),
            render,
            built: condo_storage::content::now_secs(),
        };
        self.meta.put(&meta)?;
        Ok(meta)
    }
}

fn empty_meta() -> TemplateMeta {
    TemplateMeta {
        name: String::new(),
        version: String::new(),
        description: String::new(),
        image: String::new(),
        manifest: Digest::of(b""),
        top_layer: String::new(),
        layers: Vec::new(),
        parameters: BTreeMap::new(),
        services: BTreeMap::new(),
        first_start: Vec::new(),
        volumes: Vec::new(),
        expose: Vec::new(),
        healthcheck: None,
        resources: Limits::default(),
        args: Vec::new(),
        env: Vec::new(),
        workdir: "/".into(),
        user: String::new(),
        render: Vec::new(),
        built: 0,
    }
}
