//! Mount options (`fstab` words) turned into mount flags, propagation and filesystem data.

/// What one option word does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// Set these `MS_*` flags.
    Set(u64),
    /// Clear these `MS_*` flags.
    Clear(u64),
    /// Set this propagation (`MS_PRIVATE`… possibly with `MS_REC`).
    Propagation(u64),
    /// Bind mount (`MS_BIND`, with `MS_REC` for rbind).
    Bind(bool),
    /// Idmapped mount (`recursive` for ridmap).
    Idmap(bool),
    /// Copy the files under the destination into a tmpfs (crun's `tmpcopyup`).
    TmpCopyUp,
}

/// Parses one option word; `None` when it is filesystem data (like `mode=755`) or unknown.
pub fn parse_one(o: &str) -> Option<Opt> {
    use libc::*;
    Some(match o {
        "ro" => Opt::Set(MS_RDONLY),
        "rw" => Opt::Clear(MS_RDONLY),
        "nosuid" => Opt::Set(MS_NOSUID),
        "suid" => Opt::Clear(MS_NOSUID),
        "nodev" => Opt::Set(MS_NODEV),
        "dev" => Opt::Clear(MS_NODEV),
        "noexec" => Opt::Set(MS_NOEXEC),
        "exec" => Opt::Clear(MS_NOEXEC),
        "sync" => Opt::Set(MS_SYNCHRONOUS),
        "async" => Opt::Clear(MS_SYNCHRONOUS),
        "dirsync" => Opt::Set(MS_DIRSYNC),
        "remount" => Opt::Set(MS_REMOUNT),
        "mand" => Opt::Set(MS_MANDLOCK),
        "nomand" => Opt::Clear(MS_MANDLOCK),
        "atime" => Opt::Clear(MS_NOATIME),
        "noatime" => Opt::Set(MS_NOATIME),
        "diratime" => Opt::Clear(MS_NODIRATIME),
        "nodiratime" => Opt::Set(MS_NODIRATIME),
        "relatime" => Opt::Set(MS_RELATIME),
        "norelatime" => Opt::Clear(MS_RELATIME),
        "strictatime" => Opt::Set(MS_STRICTATIME),
        "nostrictatime" => Opt::Clear(MS_STRICTATIME),
        "lazytime" => Opt::Set(MS_LAZYTIME),
        "nolazytime" => Opt::Clear(MS_LAZYTIME),
        "silent" => Opt::Set(MS_SILENT),
        "loud" => Opt::Clear(MS_SILENT),
        "nosymfollow" => Opt::Set(MS_NOSYMFOLLOW),
        "symfollow" => Opt::Clear(MS_NOSYMFOLLOW),
        "bind" => Opt::Bind(false),
        "rbind" => Opt::Bind(true),
        "private" => Opt::Propagation(MS_PRIVATE),
        "rprivate" => Opt::Propagation(MS_PRIVATE | MS_REC),
        "shared" => Opt::Propagation(MS_SHARED),
        "rshared" => Opt::Propagation(MS_SHARED | MS_REC),
        "slave" => Opt::Propagation(MS_SLAVE),
        "rslave" => Opt::Propagation(MS_SLAVE | MS_REC),
        "unbindable" => Opt::Propagation(MS_UNBINDABLE),
        "runbindable" => Opt::Propagation(MS_UNBINDABLE | MS_REC),
        "idmap" => Opt::Idmap(false),
        "ridmap" => Opt::Idmap(true),
        "tmpcopyup" => Opt::TmpCopyUp,
        _ => return None,
    })
}

/// All options of one mount, folded.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// `MS_*` flags to mount with.
    pub flags: u64,
    /// Flags the options cleared explicitly (so a remount does not keep them).
    pub cleared: u64,
    /// Propagation changes, in order.
    pub propagation: Vec<u64>,
    /// A bind mount; `Some(true)` for a recursive one.
    pub bind: Option<bool>,
    /// Idmapped; `Some(true)` for a recursive one.
    pub idmap: Option<bool>,
    /// crun's tmpcopyup.
    pub tmpcopyup: bool,
    /// Filesystem data, comma-joined.
    pub data: String,
}

impl Options {
    /// Folds a list of option words.
    pub fn parse(words: &[String]) -> Options {
        let mut o = Options::default();
        for w in words {
            match parse_one(w) {
                Some(Opt::Set(f)) => {
                    o.flags |= f;
                    o.cleared &= !f;
                }
                Some(Opt::Clear(f)) => {
                    o.flags &= !f;
                    o.cleared |= f;
                }
                Some(Opt::Propagation(p)) => o.propagation.push(p),
                Some(Opt::Bind(r)) => o.bind = Some(r || o.bind == Some(true)),
                Some(Opt::Idmap(r)) => o.idmap = Some(r),
                Some(Opt::TmpCopyUp) => o.tmpcopyup = true,
                None => {
                    if w.starts_with("x-") {
                        continue;
                    }
                    if !o.data.is_empty() {
                        o.data.push(',');
                    }
                    o.data.push_str(w);
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_words() {
        let o = Options::parse(&[
            "rbind".into(),
            "ro".into(),
            "nosuid".into(),
            "rslave".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert_eq!(o.bind, Some(true));
        assert_eq!(o.flags, libc::MS_RDONLY | libc::MS_NOSUID);
        assert_eq!(o.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
        assert_eq!(o.data, "mode=755,size=65536k");
    }
}
