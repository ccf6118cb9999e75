"""The service's routes plus one minimal DRF view, the yardstick bench/load.py serves beside the
real routes (settings: bench/minimal_settings.py): `POST /bench/minimal` validates a 3-field body
and returns it, with no database, no authentication and no throttle."""

from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class ThreeFieldSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    count = serializers.IntegerField()
    active = serializers.BooleanField()


class MinimalView(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def post(self, request):
        serializer = ThreeFieldSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.data)


urlpatterns = [
    path("bench/minimal", MinimalView.as_view()),
    path("", include("consentsite.urls")),
]
