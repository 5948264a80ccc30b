//! Files kept open between reads, as a web server keeps the files it serves open: a file the
//! files capability opens for reading is kept by its path, and the next open of that path takes
//! the kept file instead of opening it again (no `openat2`, no `close`).
//!
//! A kept file is good only while its path still names it. Every directory on the way to a kept
//! file is watched (inotify) for names in it removed, moved away, moved onto or changed; before
//! a kept file is taken, the events that came are read (one `read` that finds none in the common
//! case) and every kept file under a name they touch is let go. The kernel queues an event before
//! the call that removed or renamed the name returns, so a file replaced before an open began (by
//! this process's plugins or by any other process, such as a replica sharing the directory) is
//! never taken: an open answers the file the path names when it starts, as opening it afresh
//! would. The file is read as it is now (positioned reads), so one written in place reads as it
//! would opened afresh too.
//!
//! Only plain relative paths are kept: no `.` or `..`, and no symbolic link on the way (opened
//! with `RESOLVE_NO_SYMLINKS`). Any other path, a directory that cannot be watched, or a system
//! without inotify leaves the caller to open the file itself, every time.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rustix::fs::inotify::{self, ReadFlags, WatchFlags};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// The most files one plugin keeps open: a quarter of the files the process may have open (the
/// binary raises that limit to the most it may), and at most this many.
const MOST: usize = 4096;

/// What changes the file a name in a watched directory stands for, or the directory itself.
const WATCHED: WatchFlags = WatchFlags::MOVED_FROM
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::ONLYDIR);

/// The most directories watched at once: past it, every kept file and watch is let go and
/// watching starts again (directories of files long since let go are watched no more).
const MOST_WATCHED: usize = 8192;

/// How paths are resolved: beneath the granted directory, through no link of any kind.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS).union(ResolveFlags::NO_MAGICLINKS);

/// The files one plugin keeps open, in each of its granted directories (by their index).
pub(super) struct OpenFiles {
    grants: usize,
    /// Made at the first open: `None` where inotify is not to be had (then nothing is kept).
    kept: OnceLock<Option<Kept>>,
}

struct Kept {
    inotify: OwnedFd,
    state: Mutex<State>,
}

struct State {
    /// Counts the reads of the inotify descriptor that found events: a file opened while it
    /// moved is not kept.
    generation: u64,
    /// Each grant's kept files, by path relative to it; at most `most` in each.
    files: Vec<HashMap<PathBuf, Arc<File>>>,
    most: usize,
    /// Each watched directory by watch, and the watch of each (grant, path relative to it).
    dirs: HashMap<i32, (usize, PathBuf)>,
    watches: HashMap<(usize, PathBuf), i32>,
}

impl OpenFiles {
    pub(super) fn new(grants: usize) -> Self {
        Self { grants, kept: OnceLock::new() }
    }

    /// The file at `relative` in grant `grant` (the directory `dir`), opened for reading: the
    /// kept one or one opened now. `None` when it is not a file this keeps (the caller opens it);
    /// a `NotFound` error when nothing is there.
    pub(super) fn open(&self, grant: usize, dir: &File, relative: &Path) -> Option<io::Result<Arc<File>>> {
        if !plain(relative) {
            return None;
        }
        let kept = self.kept.get_or_init(|| Kept::new(self.grants)).as_ref()?;
        // Another thread holding the kept files is not waited for: the caller opens the file
        // afresh, which is always right, and costs less than a wait.
        let generation = {
            let mut state = kept.state.try_lock()?;
            kept.drain(&mut state);
            if let Some(file) = state.files[grant].get(relative) {
                return Some(Ok(file.clone()));
            }
            if let Err(e) = kept.watch_to(&mut state, grant, dir, relative) {
                // A directory on the way that is not there: neither is the file.
                return (e.kind() == io::ErrorKind::NotFound).then_some(Err(e));
            }
            state.generation
        };
        let file = match rustix::fs::openat2(dir, relative, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
            Ok(fd) => Arc::new(File::from(fd)),
            Err(Errno::NOENT) => return Some(Err(io::ErrorKind::NotFound.into())),
            // A symbolic link, or a system without openat2: the caller opens it.
            Err(_) => return None,
        };
        if let Some(mut state) = kept.state.try_lock() {
            kept.drain(&mut state);
            if state.generation == generation {
                state.keep(grant, relative, file.clone());
            }
        }
        Some(Ok(file))
    }

    /// How many files are kept, in all grants.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.kept.get().and_then(Option::as_ref).map_or(0, |kept| kept.state.lock().files.iter().map(HashMap::len).sum())
    }
}

impl Kept {
    fn new(grants: usize) -> Option<Self> {
        let inotify = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
        let most = usize::try_from(limit / 4).unwrap_or(MOST).min(MOST) / grants.max(1);
        if most == 0 {
            return None;
        }
        let files = (0..grants).map(|_| HashMap::new()).collect();
        Some(Self { inotify, state: Mutex::new(State { generation: 0, files, most, dirs: HashMap::new(), watches: HashMap::new() }) })
    }

    /// Reads the events that came and lets go of what they touch.
    fn drain(&self, state: &mut State) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut events = inotify::Reader::new(&self.inotify, &mut buf);
        let mut any = false;
        loop {
            let event = match events.next() {
                Ok(event) => event,
                Err(Errno::INTR) => continue,
                // None left (`AGAIN`), or the descriptor failed: nothing more to read.
                Err(Errno::AGAIN) => break,
                Err(_) => {
                    state.forget_all(&self.inotify);
                    any = true;
                    break;
                }
            };
            any = true;
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                state.forget_all(&self.inotify);
                continue;
            }
            let Some((grant, dir)) = state.dirs.get(&event.wd()).cloned() else { continue };
            match event.file_name().filter(|name| !name.is_empty()) {
                // A file's name: that file. A directory's: what is kept under it, and the watches
                // of the directories there (a directory moved keeps its watch, not its name).
                Some(name) => {
                    let named = dir.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
                    if flags.contains(ReadFlags::ISDIR) {
                        state.forget_under(&self.inotify, grant, &named);
                    } else {
                        state.files[grant].remove(&named);
                    }
                }
                // The directory itself moved or went.
                None => state.forget_under(&self.inotify, grant, &dir),
            }
        }
        if any {
            state.generation += 1;
        }
    }

    /// Watches the grant's directory and every directory on the way to `relative`, from the top
    /// down: a directory replaced after its parent is watched is seen in the parent's events.
    fn watch_to(&self, state: &mut State, grant: usize, dir: &File, relative: &Path) -> io::Result<()> {
        if state.watches.len() >= MOST_WATCHED {
            state.forget_all(&self.inotify);
            state.generation += 1;
        }
        let mut path = PathBuf::new();
        let parents = relative.parent().map(Path::components).into_iter().flatten();
        for next in std::iter::once(None).chain(parents.map(Some)) {
            if let Some(component) = next {
                path.push(component);
            }
            let key = (grant, path.clone());
            if state.watches.contains_key(&key) {
                continue;
            }
            let wd = if path.as_os_str().is_empty() {
                self.add_watch(dir.as_fd())?
            } else {
                let fd = rustix::fs::openat2(dir, &path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), RESOLVE)?;
                self.add_watch(fd.as_fd())?
            };
            // The same directory under another name (a bind mount): not kept.
            if state.dirs.get(&wd).is_some_and(|other| *other != key) {
                return Err(io::Error::other("a directory watched under two names"));
            }
            state.dirs.insert(wd, key.clone());
            state.watches.insert(key, wd);
        }
        Ok(())
    }

    /// Watches the directory `fd` is open on, through its `/proc/self/fd` link.
    fn add_watch(&self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<i32> {
        use std::os::fd::AsRawFd;
        let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
        // The link is followed: it is how the directory is reached.
        Ok(inotify::add_watch(&self.inotify, link.as_str(), WATCHED)?)
    }
}

impl State {
    /// Keeps `file` as `relative`'s in `grant`; when as many are kept as may be, one of them
    /// (any) is let go first.
    fn keep(&mut self, grant: usize, relative: &Path, file: Arc<File>) {
        let files = &mut self.files[grant];
        if files.len() >= self.most
            && let Some(any) = files.keys().next().cloned()
        {
            files.remove(&any);
        }
        files.insert(relative.to_path_buf(), file);
    }

    /// Lets go of the kept files at or under `path` in `grant`, and of the watches of the
    /// directories there.
    fn forget_under(&mut self, inotify: &OwnedFd, grant: usize, path: &Path) {
        self.files[grant].retain(|p, _| !p.starts_with(path));
        let dirs = &mut self.dirs;
        self.watches.retain(|(g, p), wd| {
            let under = *g == grant && p.starts_with(path);
            if under {
                dirs.remove(wd);
                // Already gone when the directory was removed; its last event is then ignored.
                let _ = inotify::remove_watch(inotify, *wd);
            }
            !under
        });
    }

    /// Lets go of every kept file and every watch.
    fn forget_all(&mut self, inotify: &OwnedFd) {
        for files in &mut self.files {
            files.clear();
        }
        for (wd, _) in self.dirs.drain() {
            let _ = inotify::remove_watch(inotify, wd);
        }
        self.watches.clear();
    }
}

/// A relative path of plain names only.
fn plain(path: &Path) -> bool {
    path.file_name().is_some() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn granted() -> (tempfile::TempDir, File, OpenFiles) {
        let root = tempfile::tempdir().unwrap();
        let dir = File::open(root.path()).unwrap();
        (root, dir, OpenFiles::new(1))
    }

    fn text(file: &File) -> String {
        let mut buf = vec![0; 64];
        let n = file.read_at(&mut buf, 0).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn open(files: &OpenFiles, dir: &File, path: &str) -> io::Result<Arc<File>> {
        files.open(0, dir, Path::new(path)).expect("a plain path is kept")
    }

    /// Writes `text` beside `path` and renames it over `path`, as the fs plugin writes.
    fn replace(path: &Path, text: &str) {
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, path).unwrap();
    }

    #[test]
    fn a_file_is_kept_until_its_name_stands_for_another() {
        let (root, dir, files) = granted();
        let path = root.path().join("a/b/f");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "one").unwrap();

        let first = open(&files, &dir, "a/b/f").unwrap();
        let again = open(&files, &dir, "a/b/f").unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second open did not take the kept file");
        assert_eq!(files.len(), 1);

        // Written in place: the same file, read as it is now.
        std::fs::write(&path, "two").unwrap();
        let kept = open(&files, &dir, "a/b/f").unwrap();
        assert!(Arc::ptr_eq(&first, &kept));
        assert_eq!(text(&kept), "two");

        // Renamed over: the new file.
        replace(&path, "three");
        let renamed = open(&files, &dir, "a/b/f").unwrap();
        assert!(!Arc::ptr_eq(&first, &renamed), "a replaced file was taken from the kept ones");
        assert_eq!(text(&renamed), "three");

        // Removed: nothing there.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(open(&files, &dir, "a/b/f").unwrap_err().kind(), io::ErrorKind::NotFound);

        // Its directory moved away, and another put in its place.
        std::fs::write(&path, "four").unwrap();
        assert_eq!(text(&open(&files, &dir, "a/b/f").unwrap()), "four");
        std::fs::rename(root.path().join("a/b"), root.path().join("a/old")).unwrap();
        assert_eq!(open(&files, &dir, "a/b/f").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(text(&open(&files, &dir, "a/old/f").unwrap()), "four");
        std::fs::create_dir(root.path().join("a/b")).unwrap();
        std::fs::write(&path, "five").unwrap();
        assert_eq!(text(&open(&files, &dir, "a/b/f").unwrap()), "five");
        // The directory above it moved, and another with the same files put in its place.
        std::fs::rename(root.path().join("a"), root.path().join("gone")).unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        std::fs::write(&path, "six").unwrap();
        assert_eq!(text(&open(&files, &dir, "a/b/f").unwrap()), "six");
        assert_eq!(text(&open(&files, &dir, "gone/b/f").unwrap()), "five");
    }

    #[test]
    fn a_file_replaced_by_another_process_is_not_taken_from_the_kept_ones() {
        let (root, dir, files) = granted();
        std::fs::write(root.path().join("f"), "old").unwrap();
        assert_eq!(text(&open(&files, &dir, "f").unwrap()), "old");
        let status = std::process::Command::new("sh").args(["-c", "printf new > t && mv t f"]).current_dir(root.path()).status().unwrap();
        assert!(status.success());
        assert_eq!(text(&open(&files, &dir, "f").unwrap()), "new");
    }

    #[test]
    fn paths_with_links_or_dots_are_left_to_the_caller() {
        let (root, dir, files) = granted();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::fs::write(root.path().join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink("real", root.path().join("link")).unwrap();
        for path in ["link/f", "./real/f", "real/../real/f", "/real/f", ""] {
            assert!(files.open(0, &dir, Path::new(path)).is_none(), "{path:?} was opened by the kept files");
        }
        assert_eq!(files.len(), 0);
        assert_eq!(text(&open(&files, &dir, "real/f").unwrap()), "x");
        assert_eq!(files.len(), 1);
    }

    /// Every open begun after a replacement finished (its rename returned) reads that
    /// replacement or a later one, never the file it replaced, while the opens keep the name's
    /// file hot.
    #[test]
    fn an_open_after_a_replacement_never_reads_the_replaced_file() {
        let (root, dir, files) = granted();
        let path = root.path().join("v");
        replace(&path, "0");
        let done = AtomicU64::new(0);
        const VERSIONS: u64 = 2_000;
        std::thread::scope(|s| {
            s.spawn(|| {
                for n in 1..=VERSIONS {
                    replace(&path, &n.to_string());
                    done.store(n, Ordering::SeqCst);
                }
            });
            let mut reads = 0;
            loop {
                let before = done.load(Ordering::SeqCst);
                let got: u64 = text(&open(&files, &dir, "v").unwrap()).parse().unwrap();
                assert!(got >= before, "read version {got} after version {before} was written");
                reads += 1;
                if before == VERSIONS {
                    break;
                }
            }
            assert!(reads > 100, "only {reads} reads raced the writes");
        });
    }
}
