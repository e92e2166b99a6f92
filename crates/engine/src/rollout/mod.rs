//! Attempts at problems, the one path training and evaluation share: sampling from the policy
//! ([`sampling`]) and step-level search over reasoning steps ([`step_search`]), named by one [`Method`].
//!
//! RL's rollouts (GRPO groups, expert iteration from samples or from search) and the test-time sweep both call
//! into this module; neither imports the other.

pub mod method;
pub mod sampling;
pub mod step_search;

pub use method::{Method, Outcomes, TestTimePoint, UnknownMethod};
pub use sampling::{completion_text, encode_prompt, row_seed, sample};
