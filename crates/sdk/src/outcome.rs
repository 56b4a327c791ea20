//! Call outcomes and the user's classifier of what counts as a dependency failure.
//!
//! Why a user closure: only the service knows that a `404 Not Found` or a validation
//! error is the caller's fault and says nothing about the dependency's health, while a
//! `503`, a timeout or a reset connection does. Counting 4xx as failures would open a
//! breaker because of bad input. The default, [`ErrorIsFailure`], treats every `Err`
//! as a failure and every `Ok` as a success.

/// What one completed call says about the dependency's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The dependency did its job (including answers that were the caller's fault, such as 4xx).
    Success,
    /// The dependency failed: counts towards the failure rate.
    Failure,
}

impl Outcome {
    /// Classifies an HTTP status code: 5xx and 429 (the dependency is overloaded) are
    /// failures; everything else, 4xx included, is a success for the breaker.
    pub fn from_http_status(status: u16) -> Self {
        if status >= 500 || status == 429 {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }

    /// `Failure` when `failed` is true.
    pub fn failure_if(failed: bool) -> Self {
        if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

/// Decides the [`Outcome`] of a call from its result.
///
/// Any `Fn(&Result<T, E>) -> Outcome + Send + Sync` closure is a classifier.
pub trait Classifier<T, E>: Send + Sync {
    /// The outcome of a call that returned `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F> Classifier<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome + Send + Sync,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default classifier: `Err` is a failure, `Ok` a success.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorIsFailure;

impl<T, E> Classifier<T, E> for ErrorIsFailure {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        Outcome::failure_if(result.is_err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response carrying an HTTP status, as a client library would return it.
    struct Response {
        status: u16,
    }

    #[test]
    fn client_errors_are_not_dependency_failures() {
        let classify = |r: &Result<Response, std::io::Error>| match r {
            Ok(resp) => Outcome::from_http_status(resp.status),
            Err(_) => Outcome::Failure,
        };
        assert_eq!(
            classify.classify(&Ok(Response { status: 200 })),
            Outcome::Success
        );
        assert_eq!(
            classify.classify(&Ok(Response { status: 404 })),
            Outcome::Success
        );
        assert_eq!(
            classify.classify(&Ok(Response { status: 422 })),
            Outcome::Success
        );
        assert_eq!(
            classify.classify(&Ok(Response { status: 429 })),
            Outcome::Failure
        );
        assert_eq!(
            classify.classify(&Ok(Response { status: 503 })),
            Outcome::Failure
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify.classify(&Err(reset)), Outcome::Failure);
    }

    #[test]
    fn default_classifier_counts_errors() {
        assert_eq!(ErrorIsFailure.classify(&Ok::<(), ()>(())), Outcome::Success);
        assert_eq!(
            ErrorIsFailure.classify(&Err::<(), ()>(())),
            Outcome::Failure
        );
    }
}
