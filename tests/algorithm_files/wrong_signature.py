"""Its constructor takes no ticker or capital."""


class Algorithm:
    def __init__(self):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("hold", 0)
