"""``benchmarks/profile_jax.py``: the per-kind wall time of a trace (pure Python parts)."""
from benchmarks import profile_jax as P

HLO = """%fused_computation.3 (p: f32[8,4]) -> f32[8,4] {
  %c = f32[8,4]{1,0} convolution(%p, %p), window={size=1}
}

%fused_computation.4 (p: f32[8,4]) -> f32[8,4] {
  ROOT %e = f32[8,4]{1,0} exponential(%p)
}

ENTRY %main (a: f32[8,4]) -> f32[8,4] {
  %ynn_fusion.3 = f32[8,4]{1,0} fusion(%a), kind=kCustom, calls=%fused_computation.3
  %ynn_fusion.4 = f32[8,4]{1,0} fusion(%ynn_fusion.3), kind=kCustom, calls=%fused_computation.4
}
"""


def test_fusions_with_a_convolution_are_found_in_the_hlo():
    assert P.conv_fusions(HLO) == {"ynn_fusion.3"}


def test_kinds_drop_the_instruction_number_and_split_ynnpack_fusions():
    convs = {"ynn_fusion.3"}
    assert P.kind_of("transpose_copy_fusion.117") == "transpose_copy_fusion"
    assert P.kind_of("ynn_fusion.3", convs) == "ynn_conv"
    assert P.kind_of("ynn_fusion.4", convs) == "ynn_eltwise"


def test_overlapping_intervals_count_once():
    assert P.merged_length([]) == 0
    assert P.merged_length([(0, 2), (1, 3), (5, 6)]) == 4
    assert P.merged_length([(5, 6), (0, 10)]) == 10


def test_summary_per_step_with_the_executor_events_left_out():
    events = [("ThunkExecutor::Execute", 0.0, 10.0), ("copy.1", 0.0, 1.0),
              ("copy.2", 0.5, 1.5), ("dot.7", 3.0, 4.0), ("end: dot.7", 4.0, 4.0)]
    span, covered, rows = P.summarize(events, steps=2)
    assert span == 2.0 and covered == 1.25
    assert rows == [("copy", 0.75, 1.0), ("dot", 0.5, 0.5)]
    assert P.summarize([], 1) == (0.0, 0.0, [])
