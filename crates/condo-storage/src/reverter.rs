//! Undo steps collected during a multi-step host change, run in reverse if it fails part way.

/// Collects undo closures; runs them (last first) on drop unless [`Reverter::success`] was called.
#[derive(Default)]
pub struct Reverter {
    undo: Vec<Box<dyn FnOnce() + Send>>,
}

impl Reverter {
    /// A reverter with nothing to undo.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records how to undo a step that has just succeeded.
    pub fn add(&mut self, f: impl FnOnce() + Send + 'static) {
        self.undo.push(Box::new(f));
    }

    /// The operation completed: forget every undo step.
    pub fn success(mut self) {
        self.undo.clear();
    }

    /// Runs every undo step now, last first.
    pub fn fail(mut self) {
        self.run();
    }

    fn run(&mut self) {
        while let Some(f) = self.undo.pop() {
            f();
        }
    }
}

impl Drop for Reverter {
    fn drop(&mut self) {
        self.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn runs_in_reverse_unless_success() {
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let mut r = Reverter::new();
            for i in 0..3 {
                let l = log.clone();
                r.add(move || l.lock().unwrap().push(i));
            }
        }
        assert_eq!(*log.lock().unwrap(), vec![2, 1, 0]);
        let mut r = Reverter::new();
        let l = log.clone();
        r.add(move || l.lock().unwrap().push(9));
        r.success();
        assert_eq!(log.lock().unwrap().len(), 3);
    }
}
