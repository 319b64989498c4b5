//! Registered workflows by name: typed input/output behind a type-erased runner, with the
//! input's JSON Schema (derived by `schemars`) and a compiled validator (`jsonschema`).
//!
//! The registry never touches the database; it only turns JSON into typed calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{WorkflowContext, WorkflowResult};

type Runner =
    dyn Fn(WorkflowContext, Value) -> BoxFuture<'static, WorkflowResult<Value>> + Send + Sync;
type Checker = dyn Fn(&Value) -> Result<(), String> + Send + Sync;

/// One failing field of an input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path, e.g. `input.steps` (`input` for the whole value).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A registered workflow.
pub struct WorkflowType {
    /// Its name.
    pub name: String,
    /// JSON Schema of its input.
    pub input_schema: Value,
    /// Hidden from `GET /v1/workflow-types` (test and internal workflows).
    pub hidden: bool,
    validator: Option<jsonschema::Validator>,
    check: Box<Checker>,
    run: Arc<Runner>,
}

impl WorkflowType {
    /// Every failing field of `input` (empty if it is valid).
    pub fn validate(&self, input: &Value) -> Vec<FieldError> {
        let mut out: Vec<FieldError> = match &self.validator {
            Some(v) => v
                .iter_errors(input)
                .map(|e| {
                    let mut field = pointer_to_field(e.instance_path().as_str());
                    use jsonschema::error::ValidationErrorKind as K;
                    match e.kind() {
                        K::Required { property } => {
                            if let Some(p) = property.as_str() {
                                field = format!("{field}.{p}");
                            }
                        }
                        K::AdditionalProperties { unexpected } if unexpected.len() == 1 => {
                            field = format!("{field}.{}", unexpected[0]);
                        }
                        _ => {}
                    }
                    FieldError {
                        field,
                        message: e.to_string(),
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        if out.is_empty() {
            if let Err(message) = (self.check)(input) {
                out.push(FieldError {
                    field: "input".into(),
                    message,
                });
            }
        }
        out
    }

    /// Runs the workflow on `input`, returning its output as JSON.
    pub fn run(
        &self,
        ctx: WorkflowContext,
        input: Value,
    ) -> BoxFuture<'static, WorkflowResult<Value>> {
        (self.run)(ctx, input)
    }
}

fn pointer_to_field(ptr: &str) -> String {
    let mut field = String::from("input");
    for seg in ptr.split('/').skip(1) {
        field.push('.');
        field.push_str(&seg.replace("~1", "/").replace("~0", "~"));
    }
    field
}

/// Workflows by name.
#[derive(Default)]
pub struct Registry {
    types: BTreeMap<String, WorkflowType>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `f` under `name`; its input type gives the JSON Schema.
    pub fn register<I, O, F, Fut>(&mut self, name: &str, f: F)
    where
        I: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
        O: serde::Serialize + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = WorkflowResult<O>> + Send + 'static,
    {
        let schema = serde_json::to_value(schemars::schema_for!(I)).unwrap_or(Value::Null);
        let validator = match jsonschema::validator_for(&schema) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(workflow = name, error = %e, "input schema does not compile");
                None
            }
        };
        let f = Arc::new(f);
        let run: Arc<Runner> = Arc::new(move |ctx, input| {
            let f = f.clone();
            Box::pin(async move {
                let typed: I = serde_json::from_value(input)?;
                let out = f(ctx, typed).await?;
                Ok(serde_json::to_value(out)?)
            })
        });
        let check: Box<Checker> = Box::new(|v: &Value| {
            serde_json::from_value::<I>(v.clone())
                .map(drop)
                .map_err(|e| e.to_string())
        });
        self.types.insert(
            name.to_string(),
            WorkflowType {
                name: name.to_string(),
                input_schema: schema,
                hidden: false,
                validator,
                check,
                run,
            },
        );
    }

    /// Hides `name` from listings (it can still be started).
    pub fn hide(&mut self, name: &str) {
        if let Some(t) = self.types.get_mut(name) {
            t.hidden = true;
        }
    }

    /// The workflow registered as `name`.
    pub fn get(&self, name: &str) -> Option<&WorkflowType> {
        self.types.get(name)
    }

    /// Visible workflows, by name.
    pub fn visible(&self) -> impl Iterator<Item = &WorkflowType> {
        self.types.values().filter(|t| !t.hidden)
    }

    /// Every registered name, hidden ones included.
    pub fn all_names(&self) -> Vec<String> {
        self.types.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::pointer_to_field;

    #[test]
    fn pointers_become_dotted_fields() {
        for (pointer, field) in [
            ("", "input"),
            ("/steps", "input.steps"),
            ("/a/0/b~1c", "input.a.0.b/c"),
        ] {
            assert_eq!(pointer_to_field(pointer), field);
        }
    }
}
