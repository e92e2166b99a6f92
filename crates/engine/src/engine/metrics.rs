//! `metrics.jsonl`: one JSON object per step of every stage, `{"stage": "<name>", …the step's metrics}`,
//! flushed line by line so a killed run keeps every finished step.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::EngineError;

/// What one step reports: its metrics (any struct that serialises to a JSON object) and the short text its
/// progress bar shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// The metrics as a JSON object, fields in declaration order.
    json: String,
    /// Shown beside the progress bar (`loss 0.412`).
    pub message: String,
}

impl StepRecord {
    /// Serialises `metrics`; they must form a JSON object (a struct or a map).
    pub fn new<M: Serialize>(metrics: &M, message: String) -> Result<Self, EngineError> {
        let json = serde_json::to_string(metrics).map_err(EngineError::Metrics)?;
        if !json.starts_with('{') {
            return Err(EngineError::MetricsNotAnObject);
        }
        Ok(StepRecord { json, message })
    }

    /// The metrics as a JSON object.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// Appends one line per step to a run's `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: BufWriter<File>,
}

impl MetricsLog {
    /// Opens (appending to) `path`, creating it if needed.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(EngineError::io(path))?;
        Ok(MetricsLog { path: path.to_path_buf(), file: BufWriter::new(file) })
    }

    /// Keeps the first `lines` lines of `path` (creating it empty if absent): a resumed run drops what was
    /// logged after its checkpoint, since it logs those steps again.
    pub fn truncate(path: &Path, lines: u64) -> Result<(), EngineError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(EngineError::io(path)(e)),
        };
        let present = text.split_inclusive('\n').count() as u64;
        if present < lines {
            return Err(EngineError::MetricsTooShort { path: path.to_path_buf(), present, expected: lines });
        }
        let kept: usize = text.split_inclusive('\n').take(lines as usize).map(str::len).sum();
        fs::write(path, &text.as_bytes()[..kept]).map_err(EngineError::io(path))
    }

    /// Writes `{"stage": stage, …record}` as one line.
    pub fn write(&mut self, stage: &str, record: &StepRecord) -> Result<(), EngineError> {
        let stage = serde_json::to_string(stage).map_err(EngineError::Metrics)?;
        let fields = &record.json[1..];
        let separator = if fields.starts_with('}') { "" } else { "," };
        let line = format!("{{\"stage\":{stage}{separator}{fields}\n");
        self.file.write_all(line.as_bytes()).and_then(|()| self.file.flush()).map_err(EngineError::io(&self.path))
    }
}

/// The lines of a `metrics.jsonl` without their wall-clock measurements (keys ending in `seconds` or
/// `per_second`): what the seed alone determines, so two runs of one config (or a run and its resumed twin)
/// compare equal on it.
pub fn seeded_metrics(jsonl: &str) -> Result<Vec<serde_json::Value>, serde_json::Error> {
    jsonl
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line)?;
            if let Some(fields) = value.as_object_mut() {
                fields.retain(|key, _| !(key.ends_with("seconds") || key.ends_with("per_second")));
            }
            Ok(value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Loss {
        step: u64,
        loss: f32,
    }

    #[test]
    fn lines_name_their_stage_first_and_keep_field_order() {
        let dir = std::env::temp_dir().join(format!("selfplay-metrics-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let _ = fs::remove_file(&path);
        let mut log = MetricsLog::open(&path).unwrap();
        log.write("sft", &StepRecord::new(&Loss { step: 1, loss: 0.5 }, String::new()).unwrap()).unwrap();
        let empty: std::collections::BTreeMap<String, f32> = Default::default();
        log.write("eval", &StepRecord::new(&empty, String::new()).unwrap()).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"stage\":\"sft\",\"step\":1,\"loss\":0.5}\n{\"stage\":\"eval\"}\n");
        MetricsLog::truncate(&path, 1).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
        assert!(matches!(MetricsLog::truncate(&path, 5), Err(EngineError::MetricsTooShort { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_scalar_is_not_a_metrics_record() {
        assert!(matches!(StepRecord::new(&3.0f32, String::new()), Err(EngineError::MetricsNotAnObject)));
    }
}
