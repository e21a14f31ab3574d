"""MLC's random interpretation grammars: the interpreter on hand-worked commands; episodes that are consistent
with their grammar and whose queries use only words the study examples show."""

from learntolearn.data.interpretation_grammars import (
    ATOMS,
    PHRASES,
    Grammar,
    GrammarEpisodes,
    Rule,
    random_grammar,
)

HAND = Grammar(
    [
        Rule(("dax",), ("RED",)),
        Rule(("wif",), ("GREEN",)),
        Rule(("lug",), ("BLUE",)),
        Rule(("u1", "fep"), ("[u1]", "[u1]", "[u1]")),
        Rule(("u1", "blicket", "u2"), ("[u1]", "[u2]", "[u1]")),
        Rule(("x1", "kiki", "x2"), ("[x2]", "[x1]")),
        Rule(("u1", "x1"), ("[u1]", "[x1]")),
    ],
    ("dax", "wif", "lug"),
)


def test_the_interpreter_applies_the_first_rule_that_matches_recursively():
    worked = {  # each worked out by hand from the rules above
        "lug fep": "BLUE BLUE BLUE",
        "dax blicket wif": "RED GREEN RED",
        "dax wif lug": "RED GREEN BLUE",
        "wif kiki dax fep": "RED RED RED GREEN",
        "dax fep kiki wif": "GREEN RED RED RED",
        "lug blicket wif kiki dax fep": "RED RED RED BLUE GREEN BLUE",
        "wif kiki dax kiki lug": "BLUE RED GREEN",  # the phrase before the last kiki is interpreted again
    }
    for command, output in worked.items():
        assert " ".join(HAND.interpret(tuple(command.split()))) == output, command
    assert HAND.interpret(("fep",)) == ("fep",), "a command no rule matches is left as it is"


def test_random_grammars_have_the_papers_rule_shapes():
    import random

    rng = random.Random(1)
    for _ in range(200):
        grammar = random_grammar(rng)
        primitives, functions, concatenation = grammar.rules[:4], grammar.rules[4:7], grammar.rules[7]
        assert all(len(r.left) == 1 and len(r.right) == 1 for r in primitives)
        assert concatenation == Rule(("u1", "x1"), ("[u1]", "[x1]")) and len(grammar.rules) == 8
        for rule in functions:
            variables = [w for w in rule.left if w in ATOMS + PHRASES]
            assert len(rule.left) in (2, 3) and rule.left[0] in variables and rule.left[1] not in variables
            assert 2 <= len(rule.right) <= 8 and {t.strip("[]") for t in rule.right} == set(variables)
        words = [r.left[0] for r in primitives] + [r.left[1] for r in functions]
        assert len(set(words)) == 7


def test_episodes_follow_their_grammar_and_queries_use_only_words_the_study_examples_show():
    episodes = GrammarEpisodes(seed=3)
    for _ in range(100):
        episode = episodes.sample()
        assert len(episode.study) == 14 and len(episode.queries) == 10
        commands = [c for c, _ in episode.study + episode.queries]
        assert len(set(commands)) == 24
        symbols = {r.right[0] for r in episode.grammar.rules[:4]}
        for command, output in episode.study + episode.queries:
            assert episode.grammar.interpret(command) == output
            assert 1 <= len(command) <= 8 and 1 <= len(output) <= 8 and set(output) <= symbols
        seen = {w for c, _ in episode.study for w in c}
        assert all(set(c) <= seen for c, _ in episode.queries)
    again = GrammarEpisodes(seed=3).sample()
    assert again.study == GrammarEpisodes(seed=3).sample().study, "a seed gives the same episodes"
