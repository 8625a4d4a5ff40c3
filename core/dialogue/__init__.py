"""Rasa-style dialogue: tracker state, rule and memoization policies, forms, actions, the engine."""
