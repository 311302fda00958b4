"""Ray Tune sweeps of every family: `raydemand tune basket | forecast | design`."""
