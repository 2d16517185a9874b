"""Defines a strategy under the wrong name."""


class Strategy:
    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("hold", 0)
