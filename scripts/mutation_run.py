"""Mutation run: apply one mutant at a time to a copy of the package and record the first
test that fails on it (docs/architecture.md, "Mutation runs").

Usage: ``git worktree add /tmp/mut HEAD && python scripts/mutation_run.py /tmp/mut``.
Each mutant is a (file, original text, mutated text, description) quadruple; a mutant that
survives the fast suite needs a test.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

MUTANTS = [  # noqa: E501
    ("estimators/fitting.py", "bics.append(bic_per_do(est, res, int(k), X.shape[1], ess))", "bics.append(bic_per_do(est, res, int(k), X.shape[1], np.full_like(ess, X.shape[0])))", "BIC on n instead of the Kish ESS"),
    ("estimators/fitting.py", "    return -2.0 * total + n_parameters(k, d, est.covariance_type) * np.log(ess)", "    return -2.0 * total + n_parameters(k, d, est.covariance_type) * np.log(1000.0)", "BIC penalty on a fixed n"),
    ("estimators/fitting.py", "        res = res.select(lb.argmax(0) * n_do + torch.arange(n_do, device=lb.device))", "        res = res.select(lb.argmin(0) * n_do + torch.arange(n_do, device=lb.device))", "n_init keeps the worst restart"),
    ("estimators/bootstrap.py", "p=cw.values[:, j]", "p=cw.values[:, 0]", "bootstrap uses do 0's weights for every do value"),
    ("estimators/learner.py", "check_fit(resampler, self.check, X", "check_fit(resampler, \"off\", X", "learner passes check='off' to the gate"),
    ("mixture/em.py", "        cov = s2 / nk.unsqueeze(-1) - means * means\n", "        cov = s2 / nk.unsqueeze(-1) - means * means\n        reg_covar = 0.0\n", "diag M-step drops reg_covar"),
    ("mixture/em.py", "    weights = nk / nk.sum(-1, keepdim=True)", "    weights = torch.full_like(nk, 1.0 / nk.shape[-1])", "M-step keeps uniform mixing weights"),
    ("mixture/em.py", "        newly = active & (change < tol)", "        newly = active & (change < 10 * tol)", "EM stops at 10x tol"),
    ("mixture/em.py", "        objective += torch.where(wc > 0, wc * norm, torch.zeros_like(norm)).sum(-1)", "        objective += (wc * norm).sum(-1) / 2", "objective halved"),
    ("weights/core.py", "    return w.sum(axis) ** 2 / (w * w).sum(axis)", "    return w.sum(axis) / (w * w).sum(axis)", "Kish ESS without the square"),
    ("mixture/params.py", "        counts = rng.multinomial(n, w / w.sum())", "        counts = rng.multinomial(n, np.full(len(w), 1.0 / len(w)))", "sampler ignores mixing weights"),
    ("mixture/params.py", "                out.append(mu + eps * np.sqrt(mix.covariances[j, k]))", "                out.append(mu + eps * mix.covariances[j, k])", "diag sampler uses variance as sd"),
    ("estimators/common.py", "        return np.full(n_do, max(1, n_rows // n_do))", "        return np.full(n_do, max(1, n_rows // (n_do + 1)))", "default draws per do value wrong"),
    ("estimators/common.py", "        if (name.endswith(\"_\") and not name.startswith(\"__\")) or name.startswith(\"_fit_\"):", "        if False:", "refit keeps stale attributes"),
    ("diagnostics/gate.py", "    if check == \"raise\":", "    if check == \"never\":", "gate warns instead of raising"),
    ("diagnostics/gate.py", "    if report.ok:\n        return report", "    if True:\n        return report", "gate passes everything"),
    ("diagnostics/data_checks.py", "        bad = val > th.uncertainty", "        bad = val > 3 * th.uncertainty", "uncertainty threshold 3x looser"),
    ("diagnostics/data_checks.py", "        elif k <= th.khat:", "        elif k <= th.khat + 1.0:", "k-hat threshold +1"),
    ("diagnostics/data_checks.py", "    return float(norm.ppf(1.0 - 0.025 / (d * ref.n_do))) * u.max(1)", "    return 1.0 * u.mean(1)", "uncertainty bound without Bonferroni and max"),
    ("diagnostics/data_checks.py", "        referee = bool(cross.get(\"other_ok\", True))", "        referee = True", "cross-check refereed by a failed estimate"),
    ("weights/overlap.py", "        return (self.ratio < MIN_SHARE_RATIO) & (self.z >= MIN_DEFICIT_SE)", "        return (self.ratio < 0.0) & (self.z >= MIN_DEFICIT_SE)", "positivity check never fires"),
    ("mixture/degeneracy.py", "    return int(np.floor(np.min(ess) / rows_per_component(n_features, covariance_type) + 1e-9))", "    return 10**6", "no bound of K by the effective rows"),
    ("estimators/fitting.py", "        return cls(shift, scale, var_j)", "        return cls(shift, 1.0, var_j)", "no rescaling (absolute reg_covar)"),
]

TESTS = ["tests/test_mutants.py", "tests/test_em.py", "tests/test_estimator.py", "tests/test_weights.py",
         "tests/test_contract.py", "tests/test_diagnostics.py", "tests/test_mixture.py", "tests/test_svi.py",
         "tests/test_reliability.py", "tests/test_bad_input_estimators.py", "tests/test_validation.py"]


def main(root: pathlib.Path) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    out = []
    for path, old, new, what in MUTANTS:
        f = root / "causal_mixtures" / path
        src = f.read_text()
        if src.count(old) != 1:
            out.append({"mutant": what, "file": path, "result": "not applied"})
            continue
        f.write_text(src.replace(old, new))
        try:
            r = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                 "-m", "not slow", *TESTS],
                cwd=root, env=env, capture_output=True, text=True, timeout=900,
            )
        finally:
            f.write_text(src)
        killer = [line for line in r.stdout.splitlines() if line.startswith("FAILED")]
        out.append({"mutant": what, "file": path,
                    "result": "killed" if r.returncode else "SURVIVED",
                    "by": killer[0].split(" - ")[0][7:] if killer else ""})
        sys.stdout.write(json.dumps(out[-1]) + "\n")
    return out


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]).resolve())
