"""UCB1 bandit over which parameters to change.

Each parameter is an arm. ``observe`` compares every finished trial with the
incumbent it was made against (the best kept config before it): each
parameter whose value differs was "played". A play pays nothing unless the
trial was kept (it improved on the incumbent); a kept trial pays
``gain / (gain + typical)``, where ``gain`` is its improvement and
``typical`` a running average of earlier gains (weight GAIN_WEIGHT on the
newest), so that a large improvement pays close to 1 and a negligible one
close to 0 (a parameter that only ever buys tiny gains is not worth focusing
on). Arm statistics are discounted by DISCOUNT per trial, so that the bandit
follows a search whose sensitive parameters change over time (DISCOUNT = 1
is plain UCB1).

``guide`` returns ``{"focus": [...]}``: the ceil(FOCUS_SHARE * n_params)
arms with the highest UCB1 index ``mean + EXPLORATION * sqrt(2 ln n / n_arm)``;
arms never played come first, in space order. It gives no guidance before the
first observed trial, nor when that share would cover every parameter (there
is nothing to choose, as in a one-parameter space).

Tunables:
- FOCUS_SHARE: the share of the parameters to focus on.
- EXPLORATION: weight of the UCB1 exploration bonus.
- DISCOUNT: per-trial decay of the arm statistics (1.0 = no decay).
- GAIN_WEIGHT: weight of the newest gain in the running average of gains.
"""

import math

import spacekit

FOCUS_SHARE = 0.2
EXPLORATION = 1.0
DISCOUNT = 0.85
GAIN_WEIGHT = 0.3


def observe(ctx, state, trial):
    names = spacekit.names(ctx["space"])
    plays = state.get("plays", {n: 0.0 for n in names})
    wins = state.get("wins", {n: 0.0 for n in names})
    incumbent = state.get("incumbent")
    if incumbent is not None:
        reward = 0.0
        if trial["kept"] and trial["score"] is not None and incumbent["score"] is not None:
            gain = max(0.0, incumbent["score"] - trial["score"])
            typical = state.get("typical", 0.0)
            reward = gain / (gain + typical) if typical > 0 else 0.5
            state["typical"] = gain if typical <= 0 else (1.0 - GAIN_WEIGHT) * typical + GAIN_WEIGHT * gain
        for n in names:
            plays[n] = plays[n] * DISCOUNT
            wins[n] = wins[n] * DISCOUNT
        for n in names:
            if trial["config"][n] != incumbent["config"][n]:
                plays[n] = plays[n] + 1.0
                wins[n] = wins[n] + reward
    if trial["kept"]:
        state["incumbent"] = {"config": trial["config"], "score": trial["score"]}
    state["plays"] = plays
    state["wins"] = wins


def index(n, plays, wins, total):
    if plays[n] <= 1e-9:
        return math.inf
    bonus = EXPLORATION * math.sqrt(2.0 * math.log(max(total, 1.0)) / plays[n])
    return wins[n] / plays[n] + bonus


def guide(ctx, state):
    names = spacekit.names(ctx["space"])
    n_focus = max(1, int(math.ceil(FOCUS_SHARE * len(names))))
    if n_focus >= len(names) or "plays" not in state:
        return None
    plays = state["plays"]
    wins = state["wins"]
    total = sum([plays[n] for n in names])
    order = sorted(range(len(names)), key=lambda i: (-index(names[i], plays, wins, total), i))
    return {"focus": [names[i] for i in order[:n_focus]]}
