//! Plain data between serde and Python: JSON values become dicts, lists, str, int, float,
//! bool and None, and back. Every typed object's `to_dict()` and every dict a user hands in
//! (thresholds, a subject, a whole window) goes through here, so both directions agree
//! with the JSON that the CLI writes and reads.

use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple},
};
use serde_json::{Map, Number, Value};

use crate::{report::PyFinding, signals::PyHistogram, signals::PySignals};

/// A JSON value as the Python object `json.loads` would give.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Any serialisable Rust value as a Python object, through its JSON form.
pub fn serde_to_py<'py, T: serde::Serialize>(
    py: Python<'py>,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    to_py(py, &value)
}

/// A Python object as a JSON value. `what` names the object in errors
/// (`thresholds['custom']`, `signals['host']`), so the user sees where the bad value is.
pub fn from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool first: in Python a bool is also an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<u64>() {
            return Ok(Value::from(i));
        }
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        return Err(PyValueError::new_err(format!(
            "{what}: integer {obj} does not fit in 64 bits"
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err(format!("{what}: {v} is not a finite number")));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return object_from(d.iter(), what);
    }
    if let Ok(m) = obj.cast::<PyMapping>() {
        let items = m.items()?;
        let pairs = items
            .iter()
            .map(|kv| kv.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>())
            .collect::<PyResult<Vec<_>>>()?;
        return object_from(pairs.into_iter(), what);
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, x) in obj.try_iter()?.enumerate() {
            items.push(from_py(&x?, &format!("{what}[{i}]"))?);
        }
        return Ok(Value::Array(items));
    }
    // Kerno's own objects may be nested in plain data (a Histogram in a window being built).
    if let Ok(h) = obj.cast::<PyHistogram>() {
        return to_value(&h.get().inner);
    }
    if let Ok(s) = obj.cast::<PySignals>() {
        return to_value(&s.get().inner);
    }
    if let Ok(f) = obj.cast::<PyFinding>() {
        return to_value(&f.get().inner);
    }
    Err(PyTypeError::new_err(format!(
        "{what}: cannot use a {} here (expected dict, list, str, int, float, bool or None)",
        type_name(obj)
    )))
}

/// A JSON object from key/value pairs (a dict's or any mapping's items).
pub fn object_from<'py>(
    pairs: impl Iterator<Item = (Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    what: &str,
) -> PyResult<Value> {
    let mut map = Map::new();
    for (k, v) in pairs {
        let key: String = k.extract().map_err(|_| {
            PyTypeError::new_err(format!("{what}: keys must be str, got {}", type_name(&k)))
        })?;
        let inner = from_py(&v, &format!("{what}['{key}']"))?;
        map.insert(key, inner);
    }
    Ok(Value::Object(map))
}

fn to_value<T: serde::Serialize>(v: &T) -> PyResult<Value> {
    serde_json::to_value(v).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The Python type name of an object, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}
