"""CLINC150 class splits for few-shot intent classification (Larson et al., EMNLP 2019, 150 intents in 10 domains).

``BY_INTENT_V1``: within each domain, its 15 intents sorted by name and shuffled with
``random.Random(2019)`` (domains in name order) give 9 train, 3 val and 3 test intents: 90 / 30 / 30,
every domain seen in training. ``BY_DOMAIN_V1``: whole domains, 6 / 2 / 2 (90 / 30 / 30 intents), the
harder setting where test intents come from domains never seen in training. The lists are stored
here, not regenerated, so they cannot drift. Episodes of a class draw from all 150 utterances of the
intent (the data set's train, val and test parts); out-of-scope queries come from ``oos_train``,
``oos_val`` and ``oos_test`` for the train, val and test subsets.
"""

from __future__ import annotations

SPLIT_VERSION = 1

BY_INTENT_V1: dict[str, tuple[str, ...]] = {
    'train': (
        'accept_reservations', 'account_blocked', 'alarm', 'application_status', 'are_you_a_bot',
        'bill_balance', 'bill_due', 'book_hotel', 'calculator', 'calendar', 'cancel_reservation', 'car_rental',
        'carry_on', 'change_language', 'change_speed', 'change_volume', 'confirm_reservation', 'credit_limit',
        'credit_score', 'current_location', 'damaged_card', 'date', 'definition', 'direct_deposit',
        'directions', 'do_you_have_pets', 'expiration_date', 'food_last', 'freeze_account', 'fun_fact',
        'gas_type', 'greeting', 'how_busy', 'how_old_are_you', 'income', 'ingredient_substitution',
        'ingredients_list', 'insurance', 'jump_start', 'last_maintenance', 'lost_luggage', 'make_call',
        'maybe', 'measurement_conversion', 'meeting_schedule', 'new_card', 'next_song', 'no', 'oil_change_how',
        'oil_change_when', 'order', 'order_status', 'pay_bill', 'payday', 'pin_change', 'plug_type',
        'pto_balance', 'pto_request_status', 'redeem_rewards', 'repeat', 'replacement_card_duration',
        'report_fraud', 'reset_settings', 'restaurant_reviews', 'restaurant_suggestion', 'rewards_balance',
        'schedule_maintenance', 'schedule_meeting', 'share_location', 'shopping_list', 'shopping_list_update',
        'spending_history', 'taxes', 'tell_joke', 'text', 'time', 'timezone', 'tire_change',
        'todo_list_update', 'transfer', 'travel_alert', 'travel_notification', 'update_playlist', 'user_name',
        'vaccines', 'what_are_your_hobbies', 'what_can_i_ask_you', 'what_song', 'where_are_you_from', 'yes',
    ),
    'val': (
        'balance', 'calories', 'card_declined', 'change_accent', 'credit_limit_change', 'find_phone',
        'flight_status', 'flip_coin', 'gas', 'goodbye', 'improve_credit_score', 'interest_rate',
        'international_visa', 'meal_suggestion', 'mpg', 'next_holiday', 'nutrition_info', 'order_checks',
        'pto_used', 'reminder_update', 'rollover_401k', 'smart_home', 'spelling', 'sync_device', 'todo_list',
        'translate', 'uber', 'whisper_mode', 'who_do_you_work_for', 'who_made_you',
    ),
    'test': (
        'apr', 'book_flight', 'calendar_update', 'cancel', 'change_ai_name', 'change_user_name', 'cook_time',
        'distance', 'exchange_rate', 'insurance_change', 'international_fees', 'meaning_of_life',
        'min_payment', 'play_music', 'pto_request', 'recipe', 'reminder', 'report_lost_card',
        'restaurant_reservation', 'roll_dice', 'routing', 'thank_you', 'timer', 'tire_pressure', 'traffic',
        'transactions', 'travel_suggestion', 'w2', 'weather', 'what_is_your_name',
    ),
}

BY_DOMAIN_V1: dict[str, tuple[str, ...]] = {
    "train": ("auto_and_commute", "credit_cards", "meta", "travel", "utility", "work"),
    "val": ("home", "small_talk"),
    "test": ("banking", "kitchen_and_dining"),
}
