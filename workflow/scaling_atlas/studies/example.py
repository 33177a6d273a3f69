"""The smallest complete study, shown in the README's "Adding a study": loss ∝ N^(−α) with
noise, its exponent fitted and checked against the α it was made with. It trains nothing real:
a run's "training" is one draw of the law, so the whole workflow (plan, shards, cube, fits,
figure, claims, report) runs in seconds. Its settings are ``$defs.example`` of the schema."""

import numpy as np
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured
from scaling_atlas.figures import new_figure
from scaling_atlas.laws import PowerLaw
from scaling_atlas.studies.base import TrainingStudy


class ExampleStudy(TrainingStudy):
    kind, title = "example", "A toy power law: L = N^−α with noise"
    GRID = {"size": "sizes", "seed": "seeds"}
    VARIABLES = {"size": ("model size N", "1"), "seed": ("replicate seed", "1"),
                 "loss": ("final loss", "nat"), "alpha": ("fitted exponent α of L ∝ N^−α", "1")}

    def claim_specs(self, cube):
        alpha = self.settings["alpha"]
        return (ClaimSpec("alpha", "the fit recovers the α the runs were made with",
                          f"α = {alpha}", "constructed", alpha, 0.05),)

    def train_run(self, run, log):
        noise = np.random.default_rng(int(run.run_id[:8], 16)).normal(0, run["noise"])
        return {"loss": run["size"] ** -run["alpha"] * np.exp(noise)}

    def fit_laws(self, cube, n_jobs=None):
        law = PowerLaw().fit(cube["size"].values, cube["loss"].mean("seed").values)
        return self.describe(xr.Dataset({"alpha": law.exponent_}))

    def measure(self, cube, fits):
        return {"alpha": Measured(float(fits["alpha"]))}

    def _draw_loss(self, cube, fits):
        fig, axes = new_figure()
        axes[0, 0].loglog(cube["size"], cube["loss"].mean("seed"), "o-")
        axes[0, 0].set(xlabel="N", ylabel="loss", title=f"α = {float(fits['alpha']):.3f}")
        return fig

    FIGURES = {"loss": ("Loss against N, mean over seeds.", _draw_loss)}
