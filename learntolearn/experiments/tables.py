"""The paper tables that ``ltl reproduce TABLE`` fills: each row names the preset that trains its run."""

from __future__ import annotations

from dataclasses import dataclass

from learntolearn.engine.config import TrainConfig
from learntolearn.experiments.presets import get_preset
from learntolearn.registry import Registry


@dataclass(frozen=True)
class Row:
    """One line of a results table: the run of ``preset`` scored on fixed episodes, beside the paper."""

    preset: str
    paper: float | None
    paper_ci: float | None
    source: str
    ways: int | None = None
    shots: int | None = None
    lake_runs: bool = False
    paper_is_error: bool = False
    note: str = ""
    #: rows naming the same ``versus`` are paired with the first of them (default: rows of the same setting)
    versus: str | None = None

    def config(self) -> TrainConfig:
        return get_preset(self.preset).config

    def setting(self) -> str:
        if self.lake_runs:
            return "Lake 20-way within-alphabet one-shot runs"
        c = self.config().episodes
        return f"{self.ways or c.ways}-way {self.shots or c.shots}-shot, {c.queries} queries"


TABLES: Registry[list[Row]] = Registry("table")
#: Relation Networks sum the support maps of a class, so a 1-shot-trained relation module sees 5x larger
#: inputs at 5 shots (it scored 50% 5-way); its 5-shot row needs a 5-shot-trained model.
ONE_SHOT_MODEL = "1-shot-trained model; the paper trains one per shot count"
FIVE_WAY_MODEL = "5-way-trained model; the paper trains one per way count"
FIVE_SHOT_MODEL = "5-shot-trained model"
ONE_MODEL = "one model for the four settings"
KOCH = "Koch et al. 2015 as listed by Vinyals et al. 2016, Table 1"
CHEN = "no Omniglot figure compared: Baseline / Baseline++ (Chen et al. 2019), the strong baselines of the other rows"
TABLES.register("omniglot")(
    [
        Row("protonet-omniglot-5w1s", 98.8, None, "Snell et al. 2017, Table 1"),
        Row("protonet-omniglot-5w1s", 96.0, None, "Snell et al. 2017, Table 1", ways=20),
        Row("protonet-omniglot-5w1s", 99.7, None, "Snell et al. 2017, Table 1", shots=5, note=ONE_SHOT_MODEL),
        Row("protonet-omniglot-5w1s", 98.9, None, "Snell et al. 2017, Table 1", ways=20, shots=5, note=ONE_SHOT_MODEL),
        Row("protonet-omniglot-5w1s-trainval", 98.8, None, "Snell et al. 2017, Table 1 (their final protocol)"),
        Row(
            "protonet-omniglot-5w1s-trainval", 96.0, None, "Snell et al. 2017, Table 1 (their final protocol)", ways=20
        ),
        Row("matching-omniglot-1shot", 98.1, None, "Vinyals et al. 2016, Table 1"),
        Row("matching-omniglot-1shot", 93.8, None, "Vinyals et al. 2016, Table 1", ways=20),
        Row("matching-omniglot-1shot", 98.9, None, "Vinyals et al. 2016, Table 1", shots=5, note=ONE_SHOT_MODEL),
        Row(
            "matching-omniglot-1shot", 98.5, None, "Vinyals et al. 2016, Table 1", ways=20, shots=5, note=ONE_SHOT_MODEL
        ),
        Row("relation-omniglot-5w1s", 99.6, 0.2, "Sung et al. 2018, Table 1"),
        Row("relation-omniglot-5w1s", 97.6, 0.2, "Sung et al. 2018, Table 1", ways=20, note=FIVE_WAY_MODEL),
        Row("relation-omniglot-5w5s", 99.8, 0.1, "Sung et al. 2018, Table 1"),
        Row("relation-omniglot-5w5s", 99.1, 0.1, "Sung et al. 2018, Table 1", ways=20, note=FIVE_WAY_MODEL),
        Row("matching-omniglot-5shot", 98.9, None, "Vinyals et al. 2016, Table 1", note=FIVE_SHOT_MODEL),
        Row("matching-omniglot-5shot", 98.5, None, "Vinyals et al. 2016, Table 1", ways=20, note=FIVE_SHOT_MODEL),
        Row("relation-omniglot-20w1s", 97.6, 0.2, "Sung et al. 2018, Table 1"),
        Row("relation-omniglot-20w5s", 99.1, 0.1, "Sung et al. 2018, Table 1"),
        *(
            Row("siamese-omniglot", paper, None, KOCH, ways=ways, shots=shots, note=ONE_MODEL)
            for ways, shots, paper in ((5, 1, 97.3), (5, 5, 98.4), (20, 1, 88.2), (20, 5, 97.0))
        ),
        *(
            Row(f"{variant}-omniglot", None, None, CHEN, ways=ways, shots=shots, note=ONE_MODEL)
            for variant in ("baseline", "baselinepp")
            for ways, shots in ((5, 1), (5, 5), (20, 1), (20, 5))
        ),
        Row("maml-omniglot-5w1s", 98.7, 0.4, "Finn et al. 2017, Table 1"),
        Row("anil-omniglot-5w1s", None, None, "no Omniglot figure in Raghu et al. 2020: paired with MAML's row"),
        Row(
            "recurrent-omniglot-5w1s",
            None,
            None,
            "no paper figure for this architecture; Santoro et al. 2016 and Mishra et al. 2018 report other protocols",
        ),
        Row("fomaml-omniglot-5w1s", 98.3, 0.5, "Finn et al. 2017, Table 1"),
        Row("maml-omniglot-20w1s", 95.8, 0.3, "Finn et al. 2017, Table 1"),
        Row("maml-omniglot-5w5s", 99.9, 0.1, "Finn et al. 2017, Table 1"),
        Row("maml-omniglot-20w5s", 98.9, 0.2, "Finn et al. 2017, Table 1"),
        Row("fomaml-omniglot-5w5s", 99.2, 0.2, "Finn et al. 2017, Table 1"),
        Row("fomaml-omniglot-20w1s", 89.4, 0.5, "Finn et al. 2017, Table 1"),
        Row("fomaml-omniglot-20w5s", 97.9, 0.1, "Finn et al. 2017, Table 1"),
        Row("reptile-omniglot-5w1s", 97.68, 0.04, "Nichol et al. 2018, Table 1 (transductive)"),
        Row("reptile-omniglot-5w5s", 99.48, None, "Nichol et al. 2018, Table 1 (transductive)"),
        Row("reptile-omniglot-20w1s", 89.43, None, "Nichol et al. 2018, Table 1 (transductive)"),
        Row("reptile-omniglot-20w5s", 97.12, None, "Nichol et al. 2018, Table 1 (transductive)"),
        *(
            Row(f"metasgd-omniglot-{setting}", paper, None, "Li et al. 2017 (Meta-SGD), Omniglot table")
            for setting, paper in (("5w1s", 99.53), ("5w5s", 99.93), ("20w1s", 95.93), ("20w5s", 98.97))
        ),
        Row(
            "reptile-omniglot-5w1s-30k", 97.68, 0.04, "Nichol et al. 2018, Table 1 (transductive), on the full schedule"
        ),
        Row(
            "protonet-omniglot-5w1s-2k",
            None,
            None,
            "no paper figure compared: ProtoNets on the short schedule of the R2-D2 check, as its paired reference",
            versus="short schedule",
        ),
        Row(
            "r2d2-omniglot-5w1s",
            None,
            None,
            "no paper figure compared: a 2,000-episode check of R2-D2 (Bertinetto et al. 2019) on conv4",
            versus="short schedule",
        ),
    ]
)
_LAKE = "Lake et al. 2015: human error 4.5% (Bayesian Program Learning 3.3%)"
TABLES.register("lake")(
    [
        Row("protonet-lake-background", 4.5, None, _LAKE, lake_runs=True, paper_is_error=True),
        Row("matching-lake-background", 4.5, None, _LAKE, lake_runs=True, paper_is_error=True),
        Row(
            "siamese-lake-background",
            4.5,
            None,
            _LAKE + "; Koch et al. 2015 report 8.0% error for Siamese networks",
            lake_runs=True,
            paper_is_error=True,
        ),
        Row("protonet-lake-background-affine", 4.5, None, _LAKE, lake_runs=True, paper_is_error=True),
        Row(
            "siamese-lake-background-affine",
            4.5,
            None,
            _LAKE + "; Koch et al. 2015 report 8.0% error for Siamese networks",
            lake_runs=True,
            paper_is_error=True,
        ),
    ]
)
TABLES.register("precision")(
    [
        Row("protonet-omniglot-short", None, None, "no paper: float32 reference of the precision check"),
        Row("protonet-omniglot-short-bf16", None, None, "no paper: bfloat16 mixed precision, same seed and episodes"),
        Row(
            "maml-omniglot-short",
            None,
            None,
            "no paper: float32 reference of MAML's precision check",
            versus="maml-omniglot-short",
        ),
        Row(
            "maml-omniglot-short-bf16",
            None,
            None,
            "no paper: bfloat16 query passes, same seed and episodes",
            versus="maml-omniglot-short",
        ),
        Row(
            "fomaml-omniglot-short",
            None,
            None,
            "no paper: float32 reference, MAML's setting, first order, compiled",
            versus="fomaml-omniglot-short",
        ),
        Row(
            "fomaml-omniglot-short-bf16",
            None,
            None,
            "no paper: bfloat16 query passes, same seed and episodes",
            versus="fomaml-omniglot-short",
        ),
    ]
)
TABLES.register("smoke")(
    [
        Row("protonet-synthetic-smoke", None, None, "no paper: a seconds-long check of the harness"),
        Row("protonet-synthetic-smoke", None, None, "no paper: a seconds-long check of the harness", ways=3),
        Row("anil-synthetic-smoke", None, None, "no paper: a seconds-long check of the harness"),
    ]
)
