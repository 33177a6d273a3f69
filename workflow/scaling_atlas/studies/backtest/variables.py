"""What every variable of the backtest's fits means, and its unit."""

#: what every score variable of the fits is, and its unit
SCORE_META = {
    "median_relative_error": ("median |predicted − observed| / observed loss on the held-out points", "1"),
    "mean_relative_error": ("mean |predicted − observed| / observed loss on the held-out points", "1"),
    "mean_absolute_error": ("mean |predicted − observed| loss on the held-out points",
                            "the dataset's loss units"),
    "rmse_log": ("RMSE of ln predicted − ln observed loss on the held-out points", "1"),
    "mean_log_residual": ("mean ln predicted − ln observed loss (> 0: over-predicts)", "1"),
    "nstar_log_error": ("mean |ln N*_predicted − ln N*_observed| over held-out IsoFLOP budgets", "1"),
    "nstar_log_bias": ("mean ln N*_predicted − ln N*_observed over held-out IsoFLOP budgets", "1"),
    "nstar_budgets": ("held-out IsoFLOP budgets with an interior observed N*", "1"),
    "D_over_N": ("compute-optimal tokens per parameter at 5.88e23 FLOP", "token/parameter"),
    "a": ("exponent a of N*(C) ∝ C^a", "1"),
    "n_train": ("points the procedure was fitted on", "1"),
    "n_test": ("held-out points", "1"),
    "identified": ("1 if the fit is identified (engine's identifiability check)", "1"),
    "converged": ("1 if the optimiser converged", "1"),
    "status": ("ok, failed, not identified, not applicable, or split not run", "1"),
    "reason": ("why the status is not ok", "1"),
    "at_bound": ("fitted parameters at a bound", "1"),
}
#: what every variable of the claims' intervals is, and its unit
INTERVAL_META = {
    "family": ("dataset/group fitted (every point)", "1"),
    "procedure": ("fitting procedure", "1"),
    "quantity": ("D_over_N (compute-optimal D/N at 5.88e23 FLOP) or a (N* ∝ C^a)", "1"),
    "D_over_N": ("compute-optimal D/N at 5.88e23 FLOP, fitted on every point", "token/parameter"),
    "D_over_N_low": ("lower end of D/N's 95 % percentile bootstrap interval", "token/parameter"),
    "D_over_N_high": ("upper end of D/N's 95 % percentile bootstrap interval", "token/parameter"),
    "a": ("exponent a of N* ∝ C^a, fitted on every point", "1"),
    "a_low": ("lower end of a's 95 % percentile bootstrap interval", "1"),
    "a_high": ("upper end of a's 95 % percentile bootstrap interval", "1"),
    "resamples": ("bootstrap resamples", "1"),
    "status": ("ok, failed, not identified, not applicable, or not in this run", "1"),
    "reason": ("why the status is not ok", "1"),
    "method": ("what was resampled", "1"),
    "budgets": ("IsoFLOP budgets with an interior optimum (Approach 2)", "1"),
    "at_bound": ("fitted parameters at a bound (parametric fits)", "1"),
}

#: every variable of the fit groups (``group/name``)
FIT_VARIABLES = {
    **{f"scores/{k}": v for k, v in {**SCORE_META, **{
        "family": ("dataset/group fitted as one family", "1"),
        "split": ("held-out protocol (see the attribute splits)", "1"),
        "procedure": ("fitting procedure (see the attribute procedures)", "1")}}.items()},
    **{f"leaderboard/{k}": v for k, v in {
        "rank": ("place on the leaderboard (1 = lowest mean rank)", "1"),
        "procedure": ("fitting procedure", "1"),
        "mean_rank": ("mean rank of the held-out median relative error over (family, split) "
                      "cells (1 = best in a cell)", "1"),
        "cells": ("(family, split) cells the procedure was scored in", "1"),
        "median_error": ("median over cells of the held-out median relative error", "1"),
        "median_nstar_log_error": ("median over cells of the ln N* error", "1"),
        "mean_rank_nstar": ("mean rank of the ln N* error over IsoFLOP (family, split) cells",
                            "1"),
        "cells_nstar": ("IsoFLOP cells scored on ln N*", "1"),
        "wins_nstar": ("IsoFLOP cells where the procedure had the lowest ln N* error", "1"),
        "wins": ("cells where the procedure had the lowest error", "1"),
        "failed": ("cells where the fit failed", "1"),
        "not_identified": ("cells where the fit was not identified", "1")}.items()},
    **{f"families/{k}": v for k, v in {
        "D_over_N_spread": ("max/min compute-optimal D/N at 5.88e23 FLOP over the "
                            "procedures fitted on all points (identified fits)", "1"),
        "D_over_N_low": ("lowest D/N at 5.88e23 FLOP over the procedures", "token/parameter"),
        "D_over_N_high": ("highest D/N at 5.88e23 FLOP over the procedures", "token/parameter"),
        "n_points": ("points fitted (after QC)", "1"),
        "isoflop": ("1 if the family is an IsoFLOP grid", "1"),
        "n_sizes": ("distinct model sizes", "1"),
        "family": ("dataset/group fitted as one family", "1")}.items()},
    **{f"coverage/{k}": v for k, v in {
        "coverage": ("fraction of held-out points inside the prediction interval", "1"),
        "parameter_only_coverage": ("the same for the parameter-bootstrap part alone", "1"),
        "n_test": ("held-out points", "1"),
        "median_relative_error": ("median held-out relative error", "1"),
        "family": ("dataset/group fitted as one family", "1"),
        "split": ("held-out protocol", "1"),
        "nominal": ("nominal coverage of the interval", "1")}.items()},
    **{f"intervals/{k}": v for k, v in {**INTERVAL_META,
                                        "claim": ("claim the cell is measured for", "1")}.items()},
}
