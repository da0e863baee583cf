"""The scikit-learn detectors as ONNX graphs: a feature row in, the detector's anomaly score out.

Every graph takes ``features`` (rows, kept columns) in float64, imputes missing values with the training
medians and standardises them as :meth:`TabularDetector.transform` does, then scores:

- ``mahalanobis``: (x - μ)ᵀ P (x - μ) with the estimator's precision P, a small graph of our own in float64;
- ``one-class-svm``: minus the RBF decision function Σ αᵢ exp(-γ‖x - svᵢ‖²) + b, our own graph in float64
  (ONNX Runtime has no float64 ``SVMRegressor``, and float32 would blur scores near the boundary);
- ``isolation-forest``: the projection onto its random split directions (a MatMul in float64), then one
  float64 ``TreeEnsemble`` (ai.onnx.ml 5) of our own, whose leaves hold each tree's path length; the
  projected inputs are rounded to float32 before the splits, as scikit-learn's trees compare them
  (skl2onnx's converter takes minutes for 200 trees and computes in float32);
- ``lof``: skl2onnx's converter (novelty mode) in float64.

The output ``score`` (rows,) is float64 and equals :meth:`Detector.score` to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vibrasense.errors import ModelError
from vibrasense.models.isolation_forest import IsolationForestDetector, forest_and_directions
from vibrasense.models.lof import LOFDetector
from vibrasense.models.mahalanobis import MahalanobisDetector
from vibrasense.models.one_class_svm import OneClassSVMDetector
from vibrasense.models.tabular import TabularDetector

OPSET = 18
ML_OPSET = 3  # skl2onnx's LOF
TREE_OPSET = 5  # TreeEnsemble, float64 throughout
INPUT = "features"
OUTPUT = "score"


@dataclass
class _Graph:
    """Nodes, constants and extra opset domains of a graph being built."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    constants: list[onnx.TensorProto] = field(default_factory=list)
    domains: dict[str, int] = field(default_factory=dict)

    def constant(self, name: str, value: Any, dtype: Any = np.float64) -> str:
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def tabular_to_onnx(detector: TabularDetector) -> onnx.ModelProto:
    """The ONNX graph of a fitted tabular detector (see the module's docstring for each kind)."""
    graph = _Graph()
    scaled = _preprocessing(graph, detector)
    estimator = detector.pipeline_.steps[-1][1]
    if isinstance(detector, MahalanobisDetector):
        score = _mahalanobis(graph, estimator, scaled)
    elif isinstance(detector, OneClassSVMDetector):
        score = _one_class_svm(graph, estimator, scaled)
    elif isinstance(detector, IsolationForestDetector):
        score = _isolation_forest(graph, estimator, scaled, len(detector.kept_columns_))
    elif isinstance(detector, LOFDetector):
        score = _local_outlier_factor(graph, estimator, scaled, len(detector.kept_columns_))
    else:
        raise ModelError(f"{detector.name}: no ONNX graph is defined for this detector")
    graph.node("Identity", [score], OUTPUT)
    body = helper.make_graph(
        graph.nodes,
        f"vibrasense-{detector.name}",
        [helper.make_tensor_value_info(INPUT, TensorProto.DOUBLE, [None, len(detector.kept_columns_)])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, [None])],
        initializer=graph.constants,
    )
    imports = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, v) for d, v in graph.domains.items()]
    model = helper.make_model(body, opset_imports=imports, producer_name="vibrasense")
    onnx.checker.check_model(model, full_check=True)
    return model


def _preprocessing(graph: _Graph, detector: TabularDetector) -> str:
    """Median imputation of missing and infinite values, then standard scaling, as :meth:`TabularDetector.transform`."""
    imputer, scaler = detector.pipeline_.steps[0][1], detector.pipeline_.steps[1][1]
    nan = graph.node("IsNaN", [INPUT], "is_nan")
    missing = graph.node("Or", [nan, graph.node("IsInf", [INPUT], "is_inf")], "missing")  # as select() treats them
    values = graph.node("Where", [missing, graph.constant("medians", imputer.statistics_), INPUT], "imputed")
    if scaler.with_mean:
        values = graph.node("Sub", [values, graph.constant("scale_mean", scaler.mean_)], "centred")
    if scaler.with_std:
        values = graph.node("Div", [values, graph.constant("scale", scaler.scale_)], "standardised")
    return values


def _mahalanobis(graph: _Graph, estimator: Any, scaled: str) -> str:
    centred = graph.node("Sub", [scaled, graph.constant("location", estimator.location_)], "deviation")
    projected = graph.node("MatMul", [centred, graph.constant("precision", estimator.get_precision())], "projected")
    products = graph.node("Mul", [projected, centred], "products")
    return graph.node("ReduceSum", [products, graph.constant("axis", [1], np.int64)], "distance", keepdims=0)


def _one_class_svm(graph: _Graph, estimator: Any, scaled: str) -> str:
    vectors = np.asarray(estimator.support_vectors_, dtype=np.float64)
    squares = graph.node("Mul", [scaled, scaled], "squares")
    norms = graph.node("ReduceSum", [squares, graph.constant("axis", [1], np.int64)], "norms", keepdims=1)
    cross = graph.node("MatMul", [scaled, graph.constant("vectors_t", vectors.T)], "cross")
    twice = graph.node("Mul", [cross, graph.constant("two", 2.0)], "twice_cross")
    partial = graph.node("Sub", [norms, twice], "partial_distance")
    distance = graph.node("Add", [partial, graph.constant("vector_norms", (vectors**2).sum(axis=1))], "sq_distance")
    exponent = graph.node("Mul", [distance, graph.constant("minus_gamma", -float(estimator._gamma))], "exponent")
    kernel = graph.node("Exp", [exponent], "kernel")
    weighted = graph.node("MatMul", [kernel, graph.constant("dual", estimator.dual_coef_.ravel())], "weighted")
    decision = graph.node("Add", [weighted, graph.constant("intercept", float(estimator.intercept_[0]))], "decision")
    return graph.node("Neg", [decision], "minus_decision")


def _isolation_forest(graph: _Graph, estimator: Any, scaled: str, columns: int) -> str:
    """2 ** (-Σ path lengths / (trees · c(max_samples))), as ``IsolationForest.score_samples`` negated."""
    from sklearn.ensemble._iforest import _average_path_length

    estimator, directions = forest_and_directions(estimator)
    if directions is not None:  # oblique splits: the forest sees the projected rows
        scaled = graph.node("MatMul", [scaled, graph.constant("directions", directions)], "projected")
        columns = directions.shape[1]
    trees = _Trees()
    subsampled = estimator._max_features != columns
    for index, tree in enumerate(estimator.estimators_):
        features = estimator.estimators_features_[index] if subsampled else np.arange(columns)
        # the path length of a leaf, as scikit-learn adds it up: its depth + c(samples in it) - 1
        lengths = estimator._decision_path_lengths[index] + estimator._average_path_length_per_tree[index] - 1.0
        trees.add(tree.tree_, features, lengths)
    rounded = graph.node("Cast", [scaled], "scaled_float32", to=TensorProto.FLOAT)  # as the trees see their input
    widened = graph.node("Cast", [rounded], "scaled_rounded", to=TensorProto.DOUBLE)
    graph.domains["ai.onnx.ml"] = TREE_OPSET
    graph.nodes.append(trees.node(widened, "path_lengths"))
    flat = graph.node("Reshape", ["path_lengths", graph.constant("flat", [-1], np.int64)], "path_lengths_flat")
    scale = -1.0 / (len(estimator.estimators_) * float(_average_path_length([estimator._max_samples])[0]))
    exponent = graph.node("Mul", [flat, graph.constant("minus_inverse_depth", scale)], "relative_depth")
    return graph.node("Pow", [graph.constant("two", 2.0), exponent], "isolation_score")


class _Trees:
    """The interior nodes and leaves of regression trees, laid out as the ``TreeEnsemble`` operator wants them."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.features: list[int] = []
        self.splits: list[float] = []
        self.true_ids: list[int] = []
        self.true_leafs: list[int] = []
        self.false_ids: list[int] = []
        self.false_leafs: list[int] = []
        self.leaf_weights: list[float] = []

    def add(self, tree: Any, features: np.ndarray, leaf_values: np.ndarray) -> None:
        """A scikit-learn tree (``tree_``): left when ``x[feature] <= threshold``; a leaf's output ``leaf_values``."""
        left, right = tree.children_left, tree.children_right
        interior = np.flatnonzero(left != -1)
        leaves = np.flatnonzero(left == -1)
        node_at = {int(n): len(self.features) + i for i, n in enumerate(interior)}
        leaf_at = {int(n): len(self.leaf_weights) + i for i, n in enumerate(leaves)}
        if not len(interior):  # a tree that is one leaf: a split whose both sides lead to it
            self.roots.append(len(self.features))
            self._split(0, 0.0, (leaf_at[0], 1), (leaf_at[0], 1))
        else:
            self.roots.append(node_at[0])
        for n in interior:
            sides = [(leaf_at[int(c)], 1) if left[c] == -1 else (node_at[int(c)], 0) for c in (left[n], right[n])]
            self._split(int(features[tree.feature[n]]), float(tree.threshold[n]), *sides)
        self.leaf_weights.extend(float(leaf_values[n]) for n in leaves)

    def _split(self, feature: int, threshold: float, true: tuple[int, int], false: tuple[int, int]) -> None:
        self.features.append(feature)
        self.splits.append(threshold)
        self.true_ids.append(true[0])
        self.true_leafs.append(true[1])
        self.false_ids.append(false[0])
        self.false_leafs.append(false[1])

    def node(self, source: str, output: str) -> onnx.NodeProto:
        """One ``TreeEnsemble`` node summing the leaves reached in every tree (float64 in and out)."""
        return helper.make_node(
            "TreeEnsemble",
            [source],
            [output],
            name=output,
            domain="ai.onnx.ml",
            aggregate_function=1,  # SUM
            n_targets=1,
            tree_roots=self.roots,
            nodes_featureids=self.features,
            nodes_splits=numpy_helper.from_array(np.asarray(self.splits, dtype=np.float64)),
            nodes_modes=numpy_helper.from_array(np.zeros(len(self.features), dtype=np.uint8)),  # BRANCH_LEQ
            nodes_truenodeids=self.true_ids,
            nodes_trueleafs=self.true_leafs,
            nodes_falsenodeids=self.false_ids,
            nodes_falseleafs=self.false_leafs,
            leaf_targetids=[0] * len(self.leaf_weights),
            leaf_weights=numpy_helper.from_array(np.asarray(self.leaf_weights, dtype=np.float64)),
        )


def _local_outlier_factor(graph: _Graph, estimator: Any, scaled: str, columns: int) -> str:
    """skl2onnx's graph of the novelty-mode LOF; its ``scores`` are ``decision_function``, so the score is
    ``-(scores + offset_)``, i.e. ``-score_samples`` as :meth:`TabularDetector._raw_scores`."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    converted = convert_sklearn(
        estimator,
        initial_types=[("estimator_input", DoubleTensorType([None, columns]))],
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
    )
    graph.node("Identity", [scaled], "estimator_input")
    graph.nodes.extend(converted.graph.node)
    graph.constants.extend(converted.graph.initializer)
    graph.domains.update({o.domain: o.version for o in converted.opset_import if o.domain})
    flat = graph.node("Reshape", ["scores", graph.constant("flat", [-1], np.int64)], "scores_flat")
    shifted = graph.node("Add", [flat, graph.constant("offset", float(estimator.offset_))], "score_samples")
    return graph.node("Neg", [shifted], "minus_score_samples")
