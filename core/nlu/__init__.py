"""Natural-language understanding: features, intent classifier, entities, language detection."""
