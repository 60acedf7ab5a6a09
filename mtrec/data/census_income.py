"""UCI Census-Income (KDD) with the MMoE paper's multi-task protocol.

Ma et al., KDD 2018, §6.3: train on `census-income.data`; split
`census-income.test` 1:1 at random into validation and test; two task
groups:

- group 1: `income` (> 50K) and `marital` (never married);
- group 2: `education` (at least college, i.e. an associates degree or
  higher) and `marital` (never married).

Education, marital status, the instance weight and the income label are
removed from the inputs.
"""

import logging

import numpy as np
import pandas as pd

from mtrec.data.download import locate
from mtrec.utils.arguments import check_optional_count

logger = logging.getLogger(__name__)

BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld"
# md5 of the uncompressed files.
FILES = {
    "census-income.data.gz": "887f4dc410a99bc332bddbb0a4195b88",
    "census-income.test.gz": "b82952d217858365c8e597827e3e5468",
}

# The 42 fields of a line, in order (census-income.names; the instance
# weight is field 24 and is not an attribute).
COLUMNS = [
    "age", "class_of_worker", "detailed_industry_recode",
    "detailed_occupation_recode", "education", "wage_per_hour",
    "enroll_in_edu_inst_last_wk", "marital_stat", "major_industry_code",
    "major_occupation_code", "race", "hispanic_origin", "sex",
    "member_of_a_labor_union", "reason_for_unemployment",
    "full_or_part_time_employment_stat", "capital_gains", "capital_losses",
    "dividends_from_stocks", "tax_filer_stat", "region_of_previous_residence",
    "state_of_previous_residence", "detailed_household_and_family_stat",
    "detailed_household_summary_in_household", "instance_weight",
    "migration_code_change_in_msa", "migration_code_change_in_reg",
    "migration_code_move_within_reg", "live_in_this_house_1_year_ago",
    "migration_prev_res_in_sunbelt", "num_persons_worked_for_employer",
    "family_members_under_18", "country_of_birth_father",
    "country_of_birth_mother", "country_of_birth_self", "citizenship",
    "own_business_or_self_employed",
    "fill_inc_questionnaire_for_veterans_admin", "veterans_benefits",
    "weeks_worked_in_year", "year", "income_label",
]
# Continuous attributes per census-income.names; every other attribute is
# nominal (the integer-coded recodes included) and is read as a string.
CONTINUOUS = [
    "age", "wage_per_hour", "capital_gains", "capital_losses",
    "dividends_from_stocks", "num_persons_worked_for_employer",
    "weeks_worked_in_year",
]
AT_LEAST_COLLEGE = {
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
}
REMOVED_FROM_INPUTS = ["education", "marital_stat", "instance_weight", "income_label"]
TASKS = {1: ("income", "marital"), 2: ("education", "marital")}


def read_raw(path, nrows=None):
    """One raw UCI file as a DataFrame with named columns ('?' -> NaN);
    only its first `nrows` lines when given."""
    dtypes = {c: ("float32" if c in CONTINUOUS else "string") for c in COLUMNS}
    dtypes["instance_weight"] = "float64"
    # Only '?' is missing: "NA" is a real category of hispanic_origin
    # (census-income.names lists it), which pandas' default NA strings
    # would turn into missing values.
    df = pd.read_csv(path, header=None, names=COLUMNS, sep=",", skipinitialspace=True,
                     na_values=["?"], keep_default_na=False, dtype=dtypes, engine="c",
                     nrows=nrows)
    if df.shape[1] != len(COLUMNS):
        raise ValueError(f"{path}: expected {len(COLUMNS)} fields, got {df.shape[1]}.")
    # Keep categories as plain Python strings (object dtype), '' for missing.
    for column in df.columns:
        if column not in CONTINUOUS and column != "instance_weight":
            df[column] = df[column].astype(object).where(df[column].notna(), None)
    return df


def add_labels(df, group):
    """Attach the group's task labels (int 0/1) and drop the protocol's columns."""
    out = df.drop(columns=REMOVED_FROM_INPUTS)
    marital = (df["marital_stat"] == "Never married").astype("int32")
    if group == 1:
        out["income"] = df["income_label"].str.startswith("50000+").astype("int32")
    else:
        out["education"] = df["education"].isin(AT_LEAST_COLLEGE).astype("int32")
    out["marital"] = marital
    return out


def load(group=1, data_dir=None, seed=0, download=True, max_rows=None):
    """Train, validation and test DataFrames of the MMoE paper's protocol.

    Args:
        group: 1 (income, marital) or 2 (education, marital).
        data_dir: folder with `census-income.data.gz` and
            `census-income.test.gz` (or a folder holding `census-income/`,
            laid out like `$MTREC_DATA_DIR`); default
            `$MTREC_DATA_DIR/census-income`, else the user cache
            (downloaded from UCI, md5-checked).
        seed: int. Seed of the 1:1 validation/test split.
        download: bool. Allow downloading when no local copy exists.
        max_rows: int or None. Read only the first `max_rows` lines of the
            training file and the first `max_rows // 2` lines of the test
            file (the full files' 2:1 ratio), which are then split 1:1 as
            usual: validation and test get about `max_rows // 4` rows
            each. For smoke tests; `None` (the default) reads everything.

    Returns:
        `(train, valid, test)` DataFrames: 38 feature columns (7 float32,
        31 string) plus the two label columns (int32 0/1).
    """
    if group not in TASKS:
        raise ValueError(f"group must be 1 (income, marital) or 2 (education, "
                         f"marital), got {group!r}.")
    check_optional_count("max_rows", max_rows, 4,
                         "train rows to read; validation and test get max_rows // 4 each")
    folder = locate("census-income", FILES, BASE_URL, data_dir=data_dir,
                    download=download, gunzip_md5=True)
    held_out_rows = None if max_rows is None else max_rows // 2
    train = add_labels(read_raw(folder / "census-income.data.gz", max_rows), group)
    held_out = add_labels(read_raw(folder / "census-income.test.gz", held_out_rows), group)
    order = np.random.default_rng(seed).permutation(len(held_out))
    half = len(held_out) // 2
    valid = held_out.iloc[order[:half]].reset_index(drop=True)
    test = held_out.iloc[order[half:]].reset_index(drop=True)
    a, b = TASKS[group]
    logger.info("census-income group %d: %d/%d/%d rows; label correlation %s~%s = %.4f",
                group, len(train), len(valid), len(test), a, b,
                label_correlation(train, a, b))
    return train, valid, test


def label_correlation(df, a, b):
    """Pearson correlation of two label columns (the papers report it)."""
    return float(np.corrcoef(df[a].to_numpy(float), df[b].to_numpy(float))[0, 1])
