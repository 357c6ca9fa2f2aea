"""Reinforcement learning (SPEC 2.3-2.5): MGPO advantages, Long2Short shaping and the clipped policy loss."""
