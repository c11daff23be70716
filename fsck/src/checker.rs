//! The state of a check and the order of its passes.

use std::collections::{BTreeMap, VecDeque};

use bento_api::fs::FileType;
use bento_api::ks::block::BlockDevice;
use logfs::checkpoint::Checkpoint;
use logfs::format::layout::Layout;
use logfs::format::superblock::Superblock;
use logfs::format::tables::SegMap;

use crate::CheckOptions;
use crate::report::{Finding, Issue, Object, Pass, Report, Severity};
use crate::util::{Disk, NidSet, Res, SegBitmap, Stop};

/// Findings and the device: what every pass needs.
pub(crate) struct Checker<'a, D: ?Sized> {
    pub disk: Disk<'a, D>,
    pub opts: &'a CheckOptions,
    pub report: Report,
    pub pass: Pass,
}

impl<D: BlockDevice + ?Sized> Checker<'_, D> {
    pub fn finding(&mut self, severity: Severity, object: Object, issue: Issue) {
        match severity {
            Severity::Error => self.report.errors += 1,
            Severity::Warning => self.report.warnings += 1,
            Severity::Info if !self.opts.verbose => return,
            Severity::Info => {}
        }
        if self.report.findings.len() >= self.opts.max_findings {
            self.report.suppressed += 1;
            return;
        }
        self.report.findings.push(Finding {
            severity,
            pass: self.pass,
            object,
            issue,
        });
    }

    pub fn err(&mut self, object: Object, issue: Issue) {
        self.finding(Severity::Error, object, issue)
    }

    pub fn warn(&mut self, object: Object, issue: Issue) {
        self.finding(Severity::Warning, object, issue)
    }

    pub fn info(&mut self, object: Object, issue: Issue) {
        self.finding(Severity::Info, object, issue)
    }

    pub fn start(&mut self, pass: Pass) {
        self.pass = pass;
        self.report.passes.push(pass);
    }
}

/// The volume as passes 1 and 2 established it.
pub(crate) struct Vol {
    pub sb: Superblock,
    pub layout: Layout,
    pub seed: u32,
    pub cp: Checkpoint,
    /// NAT blocks holding allocated nids (`nat_written`, bounded by the table size).
    pub nat_written: u32,
    /// Nids below this may be allocated; the rest are free by definition.
    pub nid_limit: u32,
}

/// How an inode was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    Root,
    Entry,
    Orphan,
    /// Allocated but reached by nothing; found by the connectivity pass.
    Disconnected,
}

/// What the check learned about one inode.
pub(crate) struct InodeInfo {
    pub reach: Reach,
    pub visited: bool,
    /// Visited and really an inode.
    pub ok: bool,
    /// When the nid turned out to hold another kind of node.
    pub not_inode: Option<u8>,
    pub orphan: bool,
    pub ftype: Option<FileType>,
    pub nlink: u32,
    pub parent: u32,
    /// Recorded name (directories only, for the name check).
    pub name: Option<Box<[u8]>>,
    /// Valid directory entries naming it.
    pub names: u32,
    /// Every node and directory block of it could be read (else its subdirectories, and so
    /// its link count, are not known).
    pub complete: bool,
}

impl InodeInfo {
    pub fn new(reach: Reach) -> InodeInfo {
        InodeInfo {
            reach,
            visited: false,
            ok: false,
            not_inode: None,
            orphan: reach == Reach::Orphan,
            ftype: None,
            nlink: 0,
            parent: 0,
            name: None,
            names: 0,
            complete: true,
        }
    }
}

/// A directory entry, kept for the reference-count pass.
pub(crate) struct EntryRec {
    pub dir: u32,
    pub ino: u32,
    pub dtype: u8,
    pub name: Box<[u8]>,
}

/// One segment usage entry as loaded.
#[derive(Clone, Copy)]
pub(crate) struct SutEnt {
    /// The table block verified (else nothing below is known).
    pub known: bool,
    pub valid: u16,
    pub log: u8,
    pub map: SegMap,
}

/// NAT entry value marking an entry that is unusable (its block is corrupt, or the entry is
/// invalid); errors were reported when the table was loaded.
pub(crate) const NAT_BAD: u32 = u32::MAX;

#[derive(Default)]
pub(crate) struct Counts {
    /// Allocated nids (NAT entries that are not free).
    pub nodes: u64,
    pub data_blocks: u64,
    pub prealloc: u64,
}

/// Passes 3 to 7 work on this.
pub(crate) struct Fsck<'a, D: ?Sized> {
    pub c: Checker<'a, D>,
    pub v: Vol,
    /// Entry of every nid below `nid_limit` (`NAT_BAD` when unusable).
    pub nat: Vec<u32>,
    pub sut: Vec<SutEnt>,
    /// Main-area blocks holding nodes (through the NAT) and data (through the trees).
    pub node_refs: SegBitmap,
    pub data_refs: SegBitmap,
    /// Nodes reached through the directory tree, the orphan list, or as disconnected inodes.
    pub reachable: NidSet,
    pub inodes: BTreeMap<u32, InodeInfo>,
    pub queue: VecDeque<u32>,
    pub entries: Vec<EntryRec>,
    /// `level_start(l)` for l in 0..=32.
    pub level_starts: [u64; logfs::format::dir::MAX_DEPTH as usize + 1],
    pub counts: Counts,
}

pub(crate) fn run<D: BlockDevice + ?Sized>(dev: &D, opts: &CheckOptions) -> Report {
    let mut c = Checker {
        disk: Disk::new(dev),
        opts,
        report: Report::default(),
        pass: Pass::Superblock,
    };
    let mut fsck = match crate::volume::open(&mut c) {
        Ok(v) => match Fsck::new(c, v) {
            Ok(f) => f,
            Err((c, stop)) => return finish(c.report, Some(stop)),
        },
        Err(stop) => return finish(c.report, Some(stop)),
    };
    let r = fsck.passes();
    let mut report = fsck.c.report;
    report.completed = r.is_ok();
    finish(report, r.err())
}

fn finish(mut report: Report, stop: Option<Stop>) -> Report {
    if let Some(Stop::Operational(op)) = stop {
        report.operational = Some(op);
    }
    report
}

impl<'a, D: BlockDevice + ?Sized> Fsck<'a, D> {
    #[allow(clippy::result_large_err)]
    fn new(c: Checker<'a, D>, v: Vol) -> Result<Self, (Checker<'a, D>, Stop)> {
        let segs = v.layout.main_segments;
        let mut level_starts = [0u64; logfs::format::dir::MAX_DEPTH as usize + 1];
        for (l, s) in level_starts.iter_mut().enumerate() {
            *s = logfs::format::dir::level_start(l as u32);
        }
        let parts = (|| -> Res<_> {
            Ok((
                SegBitmap::new(segs)?,
                SegBitmap::new(segs)?,
                NidSet::new(v.nid_limit)?,
            ))
        })();
        match parts {
            Ok((node_refs, data_refs, reachable)) => Ok(Fsck {
                c,
                v,
                nat: Vec::new(),
                sut: Vec::new(),
                node_refs,
                data_refs,
                reachable,
                inodes: BTreeMap::new(),
                queue: VecDeque::new(),
                entries: Vec::new(),
                level_starts,
                counts: Counts::default(),
            }),
            Err(stop) => Err((c, stop)),
        }
    }

    fn passes(&mut self) -> Res<()> {
        self.c.start(Pass::Tables);
        self.load_nat()?;
        self.load_sut()?;
        self.c.start(Pass::Tree);
        self.walk_tree()?;
        self.c.start(Pass::Connectivity);
        self.connectivity()?;
        self.reference_counts();
        self.c.start(Pass::Space);
        self.space();
        self.fill_stats();
        self.c.start(Pass::Summaries);
        self.summaries()
    }

    /// The NAT entry of `nid`: 0 when free (or past the written part of the table).
    pub fn nat_entry(&self, nid: u32) -> u32 {
        self.nat.get(nid as usize).copied().unwrap_or(0)
    }

    fn fill_stats(&mut self) {
        let s = &mut self.c.report.stats;
        for info in self.inodes.values().filter(|i| i.ok) {
            s.inodes += 1;
            match info.ftype {
                Some(FileType::Directory) => s.directories += 1,
                Some(FileType::RegularFile) => s.regular_files += 1,
                Some(FileType::Symlink) => s.symlinks += 1,
                Some(_) => s.special_files += 1,
                None => {}
            }
            if info.orphan {
                s.orphans += 1;
            }
        }
        s.nodes = self.counts.nodes;
        s.data_blocks = self.counts.data_blocks;
        s.preallocated_blocks = self.counts.prealloc;
        s.used_blocks = self.counts.data_blocks + self.counts.nodes;
    }
}
