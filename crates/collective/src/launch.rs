//! Whether this process was started by an MPI launcher. Compiled with or without the `mpi` feature, so that a
//! program can decide cheaply, before touching MPI at all, whether a run has several ranks: initialising MPI in a
//! process no launcher started makes a one-rank "singleton" world at best, and a slow or failing start at worst.

/// Variables the common launchers set in every process they start: Open MPI's `mpirun`, PMIx launchers (Open MPI
/// 4+, Slurm's `srun --mpi=pmix`), MPICH's Hydra and PMI launchers (`mpiexec`, `srun --mpi=pmi2`) and MVAPICH.
const LAUNCHER_VARIABLES: [&str; 6] =
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_SIZE"];

/// Whether an MPI launcher (`mpirun`, `mpiexec`, `srun` with an MPI plugin) started this process, judged by the
/// environment alone: the way to choose the MPI collective over the one-process one.
pub fn launched_by_mpi() -> bool {
    any_set(|name| std::env::var_os(name).is_some())
}

/// Whether `is_set` holds for any launcher variable (the environment is a parameter so tests need not change the
/// process's own).
fn any_set(is_set: impl Fn(&str) -> bool) -> bool {
    LAUNCHER_VARIABLES.iter().any(|name| is_set(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_launcher_variable_counts_and_others_do_not() {
        assert!(!any_set(|_| false));
        assert!(!any_set(|name| name == "SLURM_NTASKS" || name == "OMPI_MCA_btl"));
        for variable in LAUNCHER_VARIABLES {
            assert!(any_set(|name| name == variable), "{variable}");
        }
    }
}
