//! Where a run's results go (`--json FILE`, `--csv FILE`, `--report DIR`), checked before the
//! run. [`Outputs::open`] finds out everything that can be known about an output before the
//! measuring starts; what cannot (a disk that fills up meanwhile) is an [`OutputError`] when
//! the results are written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// An output path that cannot be used, as one line naming the flag, the path, the reason and
/// what would work.
#[derive(Debug, Error)]
pub enum OutputError {
    /// A `--json` or `--csv` path naming a directory.
    #[error("{flag} {} is a directory; give the path of a file, e.g. {}", path.display(), path.join(example).display())]
    IsDirectory {
        /// The flag, e.g. `--json`.
        flag: &'static str,
        /// The path given.
        path: PathBuf,
        /// A file name that would do inside it.
        example: &'static str,
    },
    /// A `--json` or `--csv` file that cannot be opened or written.
    #[error(
        "cannot write {flag} {}: {reason}; give a file that can be written, in a directory that \
         exists",
        path.display()
    )]
    File {
        /// The flag, e.g. `--json`.
        flag: &'static str,
        /// The path given.
        path: PathBuf,
        /// What the system said.
        reason: io::Error,
    },
    /// A `--report` directory that cannot be created or written.
    #[error(
        "cannot write the --report directory {}: {reason}; give a directory that can be created \
         and written, or --no-report",
        path.display()
    )]
    ReportDir {
        /// The path given.
        path: PathBuf,
        /// What the system said.
        reason: io::Error,
    },
}

/// A results file, open for writing since before the run.
#[derive(Debug)]
pub struct OutputFile {
    flag: &'static str,
    path: PathBuf,
    file: File,
    /// Whether [`OutputFile::open`] created the file (so that [`OutputFile::discard`] removes
    /// it).
    created: bool,
}

impl OutputFile {
    /// Opens `path` for the results of `flag` (`--json` or `--csv`), creating it if need be,
    /// and checks that it takes a write. An existing file keeps its contents until
    /// [`OutputFile::write`], so an interrupted run leaves the previous results in place.
    ///
    /// # Errors
    /// [`OutputError::IsDirectory`] for a directory, [`OutputError::File`] when the file
    /// cannot be opened or refuses even an empty write (`/dev/full`).
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::output::{OutputError, OutputFile};
    ///
    /// let err = OutputFile::open("--json", &std::env::temp_dir()).unwrap_err();
    /// assert!(matches!(err, OutputError::IsDirectory { flag: "--json", .. }));
    /// assert!(err.to_string().contains("is a directory; give the path of a file"));
    /// ```
    pub fn open(flag: &'static str, path: &Path) -> Result<Self, OutputError> {
        let failed = |reason| OutputError::File {
            flag,
            path: path.to_owned(),
            reason,
        };
        if path.is_dir() {
            let example = if flag == "--csv" {
                "results.csv"
            } else {
                "results.json"
            };
            return Err(OutputError::IsDirectory {
                flag,
                path: path.to_owned(),
                example,
            });
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(failed)?;
        // An empty write changes no file, pipe or terminal, but reaches the device: one that
        // is always full (`/dev/full`) refuses it now rather than after the run.
        if let Err(reason) = file.write(&[]) {
            if !existed {
                let _ = fs::remove_file(path);
            }
            return Err(failed(reason));
        }
        Ok(OutputFile {
            flag,
            path: path.to_owned(),
            file,
            created: !existed,
        })
    }

    /// The path given.
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::output::OutputFile;
    ///
    /// let path = std::env::temp_dir().join(format!("mapguard-doc-{}.json", std::process::id()));
    /// let out = OutputFile::open("--json", &path).unwrap();
    /// assert_eq!(out.path(), path);
    /// out.discard();
    /// assert!(!path.exists());
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's contents with `text`.
    ///
    /// # Errors
    /// [`OutputError::File`] when the write fails, e.g. the disk is full.
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::output::OutputFile;
    ///
    /// let path = std::env::temp_dir().join(format!("mapguard-doc-w-{}.csv", std::process::id()));
    /// std::fs::write(&path, "older and longer results").unwrap();
    /// OutputFile::open("--csv", &path).unwrap().write("a,b\n").unwrap();
    /// assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n");
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn write(mut self, text: &str) -> Result<(), OutputError> {
        let is_file = self.file.metadata().is_ok_and(|m| m.is_file());
        // Only a regular file has contents to replace; a device or a pipe takes the text as is.
        let result = if is_file {
            self.file.set_len(0)
        } else {
            Ok(())
        }
        .and_then(|()| self.file.write_all(text.as_bytes()));
        result.map_err(|reason| OutputError::File {
            flag: self.flag,
            path: self.path,
            reason,
        })
    }

    /// Gives the file up unwritten, removing it if [`OutputFile::open`] created it.
    ///
    /// # Examples
    /// See [`OutputFile::path`].
    pub fn discard(self) {
        if self.created {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Creates the report directory `path` if need be and checks that a file can be created in
/// it (by creating and removing one).
///
/// # Errors
/// [`OutputError::ReportDir`] when `path` is not a directory and cannot be created as one, or
/// does not take a new file.
///
/// # Examples
/// ```
/// use mapguard_cli::bench::output::check_report_dir;
///
/// let file = std::env::temp_dir().join(format!("mapguard-doc-r-{}", std::process::id()));
/// std::fs::write(&file, "").unwrap();
/// let err = check_report_dir(&file).unwrap_err().to_string();
/// assert!(err.contains("not a directory"), "{err}");
/// # std::fs::remove_file(&file).unwrap();
/// ```
pub fn check_report_dir(path: &Path) -> Result<(), OutputError> {
    let failed = |reason| OutputError::ReportDir {
        path: path.to_owned(),
        reason,
    };
    if path.exists() && !path.is_dir() {
        return Err(failed(io::Error::new(
            io::ErrorKind::NotADirectory,
            "it exists and is not a directory",
        )));
    }
    fs::create_dir_all(path).map_err(failed)?;
    let probe = path.join(".mapguard-write-check");
    File::create(&probe).map_err(failed)?;
    fs::remove_file(&probe).map_err(failed)
}

/// Every output of a run, checked before it.
#[derive(Debug)]
pub struct Outputs {
    /// `--json FILE`.
    pub json: Option<OutputFile>,
    /// `--csv FILE`.
    pub csv: Option<OutputFile>,
    /// `--report DIR` (`None` with `--no-report`), checked by [`check_report_dir`].
    pub report: Option<PathBuf>,
}

impl Outputs {
    /// Opens the `--json` and `--csv` files and checks the report directory; on the first
    /// error, files it created are removed again.
    ///
    /// # Errors
    /// The first [`OutputError`] of [`OutputFile::open`] or [`check_report_dir`].
    ///
    /// # Examples
    /// ```
    /// use mapguard_cli::bench::output::Outputs;
    ///
    /// let dir = std::env::temp_dir();
    /// let err = Outputs::open(None, Some(&dir), None).unwrap_err();
    /// assert!(err.to_string().starts_with("--csv "), "{err}");
    /// assert!(Outputs::open(None, None, None).is_ok());
    /// ```
    pub fn open(
        json: Option<&Path>,
        csv: Option<&Path>,
        report: Option<&Path>,
    ) -> Result<Self, OutputError> {
        let json = json.map(|p| OutputFile::open("--json", p)).transpose()?;
        let discard = |json: Option<OutputFile>| json.into_iter().for_each(OutputFile::discard);
        let csv = match csv.map(|p| OutputFile::open("--csv", p)).transpose() {
            Ok(csv) => csv,
            Err(e) => {
                discard(json);
                return Err(e);
            }
        };
        if let Some(Err(e)) = report.map(check_report_dir) {
            discard(json);
            discard(csv);
            return Err(e);
        }
        Ok(Outputs {
            json,
            csv,
            report: report.map(Path::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_output_removes_the_files_opened_before_it() {
        let dir = std::env::temp_dir().join(format!("mapguard-output-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let json = dir.join("new.json");
        let err = Outputs::open(Some(&json), Some(&dir), None).unwrap_err();
        assert!(
            matches!(err, OutputError::IsDirectory { flag: "--csv", .. }),
            "{err}"
        );
        assert!(!json.exists(), "the --json file was left behind");
        // A file that was there before is kept, with its contents.
        fs::write(&json, "earlier results").unwrap();
        let blocker = dir.join("a-file");
        fs::write(&blocker, "").unwrap();
        let err = Outputs::open(Some(&json), None, Some(&blocker)).unwrap_err();
        assert!(matches!(err, OutputError::ReportDir { .. }), "{err}");
        assert_eq!(fs::read_to_string(&json).unwrap(), "earlier results");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn devices_take_the_text_without_truncation() {
        let out = OutputFile::open("--json", Path::new("/dev/null")).expect("/dev/null opens");
        out.write("{}").expect("/dev/null takes any text");
    }
}
