//! Instance backups: a zstd-compressed tar stream of the instance's trees, each snapshot as
//! the changes from its parent (whiteouts for deletions), imported onto any backend.
//!
//! Stream layout: `condo-backup.json` (the manifest), then the entries of part 0 under
//! `parts/0/`, part 1 under `parts/1/`, … A part is a snapshot or the current state; it is a
//! full tree if its parent is not in the stream (nor, for an incremental one, at the target).

use super::{
    active_key, snapshot_key, InstanceError, InstanceRecord, InstanceStore, SnapshotRecord,
};
use crate::image::unpack::{Unpacker, Whiteouts};
use crate::snapshot::{mount_all, unmount, Mount, PrepareOptions};
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Include the instance's snapshots (else only its current state).
    pub snapshots: bool,
    /// Only what changed after this snapshot (the importer must already have it).
    pub since: Option<String>,
}

/// Progress of an export or import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupProgress {
    /// The part being worked on (0-based).
    pub part: usize,
    /// How many parts the stream has.
    pub parts: usize,
    /// Entries so far.
    pub entries: u64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Part {
    /// The snapshot this part is; `None` for the current state.
    snapshot: Option<String>,
    /// The snapshot it is a diff against; `None` for a full tree.
    base: Option<String>,
    created: u64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct BackupManifest {
    version: u32,
    instance: String,
    quota: Option<u64>,
    since: Option<String>,
    parts: Vec<Part>,
}

const MANIFEST: &str = "condo-backup.json";

fn berr(e: impl std::fmt::Display) -> InstanceError {
    InstanceError::Backup(e.to_string())
}

/// A temporary mount of snapshot trees, undone on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn new(mounts: &[Mount], at: PathBuf) -> Result<Self, InstanceError> {
        fs::create_dir_all(&at).map_err(|source| InstanceError::Io {
            path: at.clone(),
            source,
        })?;
        let ro: Vec<Mount> = mounts
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.options.retain(|o| o != "rw");
                m.options.push("ro".into());
                m
            })
            .collect();
        if let Err(source) = mount_all(&ro, &at) {
            let _ = fs::remove_dir(&at);
            return Err(InstanceError::Io { path: at, source });
        }
        Ok(Self(at))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0);
        let _ = fs::remove_dir(&self.0);
    }
}

struct PartWriter<'a, W: Write> {
    b: &'a mut tar::Builder<W>,
    prefix: String,
    links: HashMap<(u64, u64), String>,
    entries: u64,
}

impl<W: Write> PartWriter<'_, W> {
    fn walk(&mut self, rel: &Path, new: &Path, old: Option<&Path>) -> std::io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(new.join(rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for n in &names {
            let p = rel.join(n);
            let nm = fs::symlink_metadata(new.join(&p))?;
            let om = old.and_then(|o| fs::symlink_metadata(o.join(&p)).ok());
            if om
                .as_ref()
                .is_none_or(|om| differs(&nm, om, &new.join(&p), &old.unwrap_or(new).join(&p)))
            {
                self.emit(&p, &new.join(&p), &nm)?;
            }
            if nm.is_dir() {
                let sub_old = if om.as_ref().is_some_and(|m| m.is_dir()) {
                    old
                } else {
                    None
                };
                self.walk(&p, new, sub_old)?;
            }
        }
        if let Some(o) = old {
            if let Ok(rd) = fs::read_dir(o.join(rel)) {
                let mut gone: Vec<_> = rd
                    .flatten()
                    .map(|e| e.file_name())
                    .filter(|n| fs::symlink_metadata(new.join(rel).join(n)).is_err())
                    .collect();
                gone.sort();
                for n in gone {
                    let mut wh = std::ffi::OsString::from(".wh.");
                    wh.push(&n);
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(0);
                    h.set_mode(0o644);
                    self.b.append_data(
                        &mut h,
                        format!("{}{}", self.prefix, rel.join(wh).display()),
                        std::io::empty(),
                    )?;
                    self.entries += 1;
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, rel: &Path, full: &Path, m: &fs::Metadata) -> std::io::Result<()> {
        let name = format!("{}{}", self.prefix, rel.display());
        let ft = m.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        self.entries += 1;
        let x = xattrs(full);
        if !x.is_empty() {
            self.b
                .append_pax_extensions(x.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
        if ft.is_file() && m.nlink() > 1 {
            if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                return self.b.append_link(&mut h, name, first);
            }
            self.links
                .insert((m.dev(), m.ino()), rel.display().to_string());
        }
        if ft.is_symlink() {
            let t = fs::read_link(full)?;
            self.b.append_link(&mut h, name, t)
        } else if ft.is_file() {
            self.b.append_data(&mut h, name, fs::File::open(full)?)
        } else {
            h.set_size(0);
            self.b.append_data(&mut h, name, std::io::empty())
        }
    }
}

fn differs(n: &fs::Metadata, o: &fs::Metadata, np: &Path, op: &Path) -> bool {
    if n.file_type() != o.file_type()
        || n.mode() != o.mode()
        || n.uid() != o.uid()
        || n.gid() != o.gid()
    {
        return true;
    }
    if n.is_dir() {
        return false;
    }
    if n.size() != o.size()
        || n.mtime() != o.mtime()
        || n.mtime_nsec() != o.mtime_nsec()
        || n.rdev() != o.rdev()
    {
        return true;
    }
    n.file_type().is_symlink() && fs::read_link(np).ok() != fs::read_link(op).ok()
}

fn xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(p, &mut names) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for k in names[..n].split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let k = String::from_utf8_lossy(k).into_owned();
        if k.starts_with("trusted.overlay.") {
            continue;
        }
        let mut v = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(p, k.as_str(), &mut v) {
            v.truncate(len);
            out.push((format!("SCHILY.xattr.{k}"), v));
        }
    }
    out
}

impl InstanceStore {
    fn scratch(&self, what: &str) -> PathBuf {
        self.root.join(crate::fsutil::temp_name(what))
    }

    /// Writes the instance (optionally with its snapshots, or only what changed since one) as
    /// a zstd-compressed tar stream. The instance should be stopped.
    pub fn export(
        &self,
        name: &str,
        opts: &ExportOptions,
        w: impl Write,
        progress: &dyn Fn(&BackupProgress),
    ) -> Result<(), InstanceError> {
        let r = self.load(name)?;
        if let Some(s) = &opts.since {
            self.require(&r, s)?;
        }
        let key_of = |s: &str| snapshot_key(name, s);
        let mut included: Vec<&SnapshotRecord> = Vec::new();
        if opts.snapshots || opts.since.is_some() {
            let skip = match &opts.since {
                Some(s) => r
                    .snapshots
                    .iter()
                    .position(|x| &x.name == s)
                    .map(|i| i + 1)
                    .unwrap_or(0),
                None => 0,
            };
            included.extend(r.snapshots.iter().skip(skip));
        }
        // Each part is the diff from the part before it (or from `since`): any tree the importer
        // has is a valid base, and this keeps every backend's stream incremental.
        let mut parts = Vec::new();
        let mut prev = opts.since.clone();
        for s in &included {
            parts.push(Part {
                snapshot: Some(s.name.clone()),
                base: prev.clone(),
                created: s.created,
            });
            prev = Some(s.name.clone());
        }
        parts.push(Part {
            snapshot: None,
            base: prev,
            created: crate::content::now_secs(),
        });
        let manifest = BackupManifest {
            version: 1,
            instance: name.into(),
            quota: r.quota,
            since: opts.since.clone(),
            parts: parts.clone(),
        };

        let enc = zstd::stream::write::Encoder::new(w, 3).map_err(berr)?;
        let mut b = tar::Builder::new(enc);
        let data = serde_json::to_vec_pretty(&manifest).map_err(berr)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, MANIFEST, &data[..]).map_err(berr)?;
        let view =
            |key: Option<String>, tag: &str| -> Result<Option<(Mounted, String)>, InstanceError> {
                let Some(k) = key else { return Ok(None) };
                let vk = format!(
                    "backup/{}/{}",
                    std::process::id(),
                    crate::fsutil::temp_name(tag)
                );
                let m = self.snap.view(&vk, Some(&k))?;
                match Mounted::new(&m, self.scratch(tag)) {
                    Ok(mt) => Ok(Some((mt, vk))),
                    Err(e) => {
                        let _ = self.snap.remove(&vk);
                        Err(e)
                    }
                }
            };
        for (i, p) in parts.iter().enumerate() {
            let new = match &p.snapshot {
                Some(s) => view(Some(key_of(s)), "new")?,
                None => {
                    let m = self.snap.mounts(&active_key(&r))?;
                    Some((Mounted::new(&m, self.scratch("cur"))?, String::new()))
                }
            };
            let old = view(p.base.as_deref().map(key_of), "old")?;
            let res = (|| -> Result<(), InstanceError> {
                let (nm, _) = new.as_ref().ok_or_else(|| berr("internal: no tree"))?;
                let mut pw = PartWriter {
                    b: &mut b,
                    prefix: format!("parts/{i}/"),
                    links: HashMap::new(),
                    entries: 0,
                };
                pw.walk(
                    Path::new(""),
                    &nm.0,
                    old.as_ref().map(|(m, _)| m.0.as_path()),
                )
                .map_err(berr)?;
                progress(&BackupProgress {
                    part: i,
                    parts: parts.len(),
                    entries: pw.entries,
                });
                Ok(())
            })();
            for (m, k) in [new, old].into_iter().flatten() {
                drop(m);
                if !k.is_empty() {
                    let _ = self.snap.remove(&k);
                }
            }
            res?;
        }
        b.into_inner()
            .map_err(berr)?
            .finish()
            .map_err(berr)?
            .flush()
            .map_err(berr)
    }

    /// Restores an exported stream as instance `rename` (or its original name); an incremental
    /// stream extends the existing instance, which must have the snapshot it starts from.
    pub fn import(
        &self,
        r: impl Read,
        rename: Option<&str>,
        progress: &dyn Fn(&BackupProgress),
    ) -> Result<InstanceRecord, InstanceError> {
        let dec = zstd::stream::read::Decoder::new(r).map_err(berr)?;
        let mut ar = tar::Archive::new(dec);
        let mut entries = ar.entries().map_err(berr)?;
        let mut first = entries
            .next()
            .ok_or_else(|| berr("empty stream"))?
            .map_err(berr)?;
        if first.path_bytes().as_ref() != MANIFEST.as_bytes() {
            return Err(berr(format!("stream does not start with {MANIFEST}")));
        }
        let mut data = Vec::new();
        first
            .by_ref()
            .take(1 << 20)
            .read_to_end(&mut data)
            .map_err(berr)?;
        let man: BackupManifest = serde_json::from_slice(&data)
            .map_err(|e| berr(format!("malformed {MANIFEST}: {e}")))?;
        if man.version != 1 {
            return Err(berr(format!("unsupported backup version {}", man.version)));
        }
        let name = rename.unwrap_or(&man.instance).to_string();
        super::check_name(&name)?;
        let mut rec = match &man.since {
            None => {
                if self.path(&name).exists() {
                    return Err(InstanceError::Exists(name));
                }
                InstanceRecord {
                    name: name.clone(),
                    base: None,
                    snapshots: Vec::new(),
                    quota: man.quota,
                    generation: 0,
                    parent: None,
                    pending: None,
                }
            }
            Some(s) => {
                let r = self.get(&name)?;
                self.require(&r, s)?;
                r
            }
        };
        let old_active = man.since.as_ref().map(|_| active_key(&rec));
        if man.since.is_some() {
            rec.generation += 1;
        }
        let mut made: Vec<String> = Vec::new();
        let res = self.import_parts(&man, &mut rec, &mut entries, &mut made, progress);
        if let Err(e) = res {
            for k in made.iter().rev() {
                let _ = self.snap.remove(k);
            }
            return Err(e);
        }
        self.save(&rec)?;
        if let Some(k) = old_active {
            let _ = self.snap.remove(&k);
        }
        Ok(rec)
    }

    fn import_parts<R: Read>(
        &self,
        man: &BackupManifest,
        rec: &mut InstanceRecord,
        entries: &mut tar::Entries<'_, R>,
        made: &mut Vec<String>,
        progress: &dyn Fn(&BackupProgress),
    ) -> Result<(), InstanceError> {
        let name = rec.name.clone();
        let mode = if self.snap.is_layered() {
            Whiteouts::Overlay
        } else {
            Whiteouts::Delete
        };
        let mut cur: Option<(usize, String, Unpacker)> = None;
        let mut next_part = 0usize;
        let finish = |cur: Option<(usize, String, Unpacker)>,
                      rec: &mut InstanceRecord,
                      made: &mut Vec<String>|
         -> Result<(), InstanceError> {
            let Some((i, key, mut u)) = cur else {
                return Ok(());
            };
            u.finish()?;
            let p = &man.parts[i];
            if let Some(s) = &p.snapshot {
                let sk = snapshot_key(&name, s);
                self.snap.commit(&sk, &key)?;
                made.pop();
                made.push(sk.clone());
                rec.snapshots.push(SnapshotRecord {
                    name: s.clone(),
                    created: p.created,
                });
                rec.parent = Some(sk);
            }
            progress(&BackupProgress {
                part: i,
                parts: man.parts.len(),
                entries: 0,
            });
            Ok(())
        };
        let start = |i: usize,
                     rec: &mut InstanceRecord,
                     made: &mut Vec<String>|
         -> Result<(String, Unpacker), InstanceError> {
            let p = &man.parts[i];
            let parent = p.base.as_ref().map(|b| snapshot_key(&name, b));
            let key = match p.snapshot {
                Some(_) => format!("backup-import/{}/{i}", std::process::id()),
                None => active_key(rec),
            };
            let opts = PrepareOptions {
                quota: if p.snapshot.is_none() {
                    rec.quota
                } else {
                    None
                },
                ..Default::default()
            };
            self.snap.prepare(&key, parent.as_deref(), &opts)?;
            made.push(key.clone());
            if p.snapshot.is_none() {
                rec.parent = parent;
            }
            let dir = self.snap.fs_path(&key)?;
            Ok((key, Unpacker::new(&dir, mode)?))
        };
        loop {
            let e = entries.next();
            let target = match &e {
                Some(Ok(en)) => {
                    let path = en.path_bytes().into_owned();
                    let rest = path.strip_prefix(b"parts/").ok_or_else(|| {
                        berr(format!(
                            "unexpected entry {:?}",
                            String::from_utf8_lossy(&path)
                        ))
                    })?;
                    let slash = rest
                        .iter()
                        .position(|&b| b == b'/')
                        .ok_or_else(|| berr("entry outside a part"))?;
                    let i: usize = std::str::from_utf8(&rest[..slash])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| berr("bad part number"))?;
                    if i >= man.parts.len() {
                        return Err(berr(format!("entry for part {i} of {}", man.parts.len())));
                    }
                    Some((i, rest[slash + 1..].to_vec()))
                }
                Some(Err(err)) => return Err(berr(format!("reading stream: {err}"))),
                None => None,
            };
            let upto = target
                .as_ref()
                .map(|(i, _)| *i)
                .unwrap_or(man.parts.len() - 1);
            // Parts without entries still exist: open and close every one up to here.
            while cur.as_ref().is_none_or(|(i, _, _)| *i < upto) {
                finish(cur.take(), rec, made)?;
                if next_part > upto {
                    return Err(berr("parts out of order"));
                }
                let (k, u) = start(next_part, rec, made)?;
                cur = Some((next_part, k, u));
                next_part += 1;
            }
            match (target, e) {
                (Some((_, path)), Some(Ok(mut en))) => {
                    let (_, _, u) = cur.as_mut().ok_or_else(|| berr("internal: no part"))?;
                    u.entry(&mut en, Some(path))?;
                }
                _ => {
                    finish(cur.take(), rec, made)?;
                    return Ok(());
                }
            }
        }
    }
}
