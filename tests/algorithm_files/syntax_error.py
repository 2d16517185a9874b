"""A file with a syntax error on line 6."""


class Algorithm:
    def on_data(self, bars, transaction_history)
        return ("hold", 0)
