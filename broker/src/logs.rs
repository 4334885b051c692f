//! Log files in the Greengrass format and places (`semantics.md` §6):
//! `<root>/logs/greengrass.log` for the broker, `<root>/logs/<component>.log`
//! per component, rotated by size with a bounded total.
//!
//! A line looks like the nucleus' TEXT format:
//!
//! ```text
//! 2024-01-01T00:00:00.000Z [INFO] (Copier) com.example.Hello: stdout. hi. {scriptName=services.com.example.Hello.lifecycle.Run, serviceName=com.example.Hello, currentState=RUNNING}
//! ```

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The nucleus rotates a file past 1 024 KB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;
/// ...and keeps at most 10 240 KB per log, rotated files included.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 10 * 1024 * 1024;

/// Where logs go and how big they may grow.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `<root>/logs`.
    pub dir: PathBuf,
    /// Size at which a file is rotated.
    pub max_file_bytes: u64,
    /// Total size of one log's files, current and rotated.
    pub max_total_bytes: u64,
    /// Also write every line to standard error (running in the foreground).
    pub echo_stderr: bool,
}

impl LogConfig {
    /// Logs under `<root>/logs` with the nucleus' default sizes.
    pub fn under(root: &Path) -> Self {
        Self {
            dir: root.join("logs"),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            echo_stderr: true,
        }
    }
}

/// A size-rotated log file. Writes never fail loudly: a full disk must not
/// take the broker down, so errors are reported once to standard error.
#[derive(Debug)]
pub struct RotatingFile {
    config: LogConfig,
    name: String,
    file: Option<File>,
    size: u64,
    failed: bool,
}

impl RotatingFile {
    /// The log `<dir>/<name>.log`.
    pub fn new(config: LogConfig, name: &str) -> Self {
        Self {
            config,
            name: name.to_owned(),
            file: None,
            size: 0,
            failed: false,
        }
    }

    fn path(&self) -> PathBuf {
        self.config.dir.join(format!("{}.log", self.name))
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            std::fs::create_dir_all(&self.config.dir)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(self.path())?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Appends `line` (which ends in a newline), rotating first if needed.
    pub fn write_line(&mut self, line: &str) {
        if self.config.echo_stderr {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        let result = (|| -> std::io::Result<()> {
            if self.size > 0 && self.size + line.len() as u64 > self.config.max_file_bytes {
                self.rotate()?;
            }
            let file = self.open()?;
            file.write_all(line.as_bytes())?;
            self.size += line.len() as u64;
            Ok(())
        })();
        if let Err(e) = result
            && !self.failed
        {
            self.failed = true;
            let _ = writeln!(
                std::io::stderr(),
                "ggipc-broker: cannot write {}: {e}",
                self.path().display()
            );
        }
    }

    /// Renames the current file to `<name>_<yyyy_MM_dd_HH>_<index>.log` and
    /// deletes the oldest rotated files beyond the total size.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let stamp = utc_parts(SystemTime::now());
        let prefix = format!(
            "{}_{:04}_{:02}_{:02}_{:02}_",
            self.name, stamp.year, stamp.month, stamp.day, stamp.hour
        );
        let mut index = 0;
        let rotated = loop {
            let candidate = self.config.dir.join(format!("{prefix}{index}.log"));
            if !candidate.exists() {
                break candidate;
            }
            index += 1;
        };
        std::fs::rename(self.path(), rotated)?;
        self.size = 0;
        self.prune()
    }

    fn prune(&self) -> std::io::Result<()> {
        let stem = format!("{}_", self.name);
        let mut rotated: Vec<(SystemTime, PathBuf, u64)> = std::fs::read_dir(&self.config.dir)?
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with(&stem) && n.ends_with(".log")
            })
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, e.path(), m.len()))
            })
            .collect();
        rotated.sort();
        let mut total: u64 = rotated.iter().map(|r| r.2).sum();
        for (_, path, len) in rotated {
            if total
                <= self
                    .config
                    .max_total_bytes
                    .saturating_sub(self.config.max_file_bytes)
            {
                break;
            }
            std::fs::remove_file(path)?;
            total -= len;
        }
        Ok(())
    }
}

/// Calendar parts of a UTC instant.
struct UtcParts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

fn utc_parts(t: SystemTime) -> UtcParts {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Days to civil date (proleptic Gregorian), after H. Hinnant's
    // well-known algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    UtcParts {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        millis: since.subsec_millis(),
    }
}

/// `2024-01-01T00:00:00.000Z`.
pub fn iso8601(t: SystemTime) -> String {
    let p = utc_parts(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

/// One line in the nucleus' TEXT format; empty parts are left out.
pub fn format_line(
    level: &str,
    thread: &str,
    logger: &str,
    event_type: &str,
    message: &str,
    context: &[(&str, &str)],
) -> String {
    let mut line = format!(
        "{} [{level}] ({thread}) {logger}: ",
        iso8601(SystemTime::now())
    );
    let mut parts: Vec<String> = Vec::with_capacity(3);
    if !event_type.is_empty() {
        parts.push(event_type.to_owned());
    }
    if !message.is_empty() {
        parts.push(message.to_owned());
    }
    if !context.is_empty() {
        let mut ctx = String::from("{");
        for (i, (k, v)) in context.iter().enumerate() {
            if i > 0 {
                ctx.push_str(", ");
            }
            let _ = write!(ctx, "{k}={v}");
        }
        ctx.push('}');
        parts.push(ctx);
    }
    line.push_str(&parts.join(". "));
    line.push('\n');
    line
}

/// The log of one component, shared by its processes' output readers.
#[derive(Debug, Clone)]
pub struct ComponentLog {
    component: Arc<str>,
    file: Arc<Mutex<RotatingFile>>,
}

impl ComponentLog {
    /// `<dir>/<component>.log`.
    pub fn new(config: LogConfig, component: &str) -> Self {
        Self {
            component: Arc::from(component),
            file: Arc::new(Mutex::new(RotatingFile::new(config, component))),
        }
    }

    /// The component.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Writes one line with the component as logger name.
    pub fn write(
        &self,
        level: &str,
        thread: &str,
        event_type: &str,
        message: &str,
        context: &[(&str, &str)],
    ) {
        let line = format_line(level, thread, &self.component, event_type, message, context);
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_line(&line);
    }
}

/// A `tracing` layer writing the broker's own events to `greengrass.log` in
/// the same format.
#[derive(Debug)]
pub struct GreengrassLogLayer {
    file: Mutex<RotatingFile>,
}

impl GreengrassLogLayer {
    /// Writes to `<dir>/greengrass.log`; standard error gets its own layer.
    pub fn new(mut config: LogConfig) -> Self {
        config.echo_stderr = false;
        Self {
            file: Mutex::new(RotatingFile::new(config, "greengrass")),
        }
    }
}

struct FieldText {
    message: String,
    fields: Vec<(String, String)>,
}

impl tracing::field::Visit for FieldText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_owned(), format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields
                .push((field.name().to_owned(), value.to_owned()));
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GreengrassLogLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut text = FieldText {
            message: String::new(),
            fields: Vec::new(),
        };
        event.record(&mut text);
        let meta = event.metadata();
        let context: Vec<(&str, &str)> = text
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let line = format_line(
            meta.level().as_str(),
            "main",
            meta.target(),
            "",
            &text.message,
            &context,
        );
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_line(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_nucleus_shape() {
        let line = format_line(
            "INFO",
            "Copier",
            "com.example.Hello",
            "stdout",
            "hi",
            &[
                ("serviceName", "com.example.Hello"),
                ("currentState", "RUNNING"),
            ],
        );
        let (stamp, rest) = line.split_once(' ').unwrap();
        assert_eq!(stamp.len(), 24, "{stamp}");
        assert!(stamp.ends_with('Z'));
        assert_eq!(
            rest,
            "[INFO] (Copier) com.example.Hello: stdout. hi. {serviceName=com.example.Hello, currentState=RUNNING}\n"
        );
        let bare = format_line("WARN", "t", "l", "", "only", &[]);
        assert!(bare.ends_with("[WARN] (t) l: only\n"), "{bare}");
    }

    #[test]
    fn civil_dates_are_right() {
        let at = |secs: u64| iso8601(UNIX_EPOCH + std::time::Duration::from_millis(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(at(1_704_067_199_999), "2023-12-31T23:59:59.999Z");
        assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn rotation_keeps_the_total_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 1000,
            max_total_bytes: 3000,
            echo_stderr: false,
        };
        let mut file = RotatingFile::new(config, "c");
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..200 {
            file.write_line(&line);
        }
        let total: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(total <= 3000, "{total} bytes kept");
        assert!(dir.path().join("c.log").exists());
        let rotated = std::fs::read_dir(dir.path()).unwrap().count() - 1;
        assert!(rotated >= 1, "nothing rotated");
    }
}
